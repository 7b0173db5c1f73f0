// The memory-tier HIT writes its head from one header array with
// X-Request-Id appended (src/handler.ts sendObject): on the wire every header
// comes exactly once, X-Request-Id equals the access line's reqId, and while
// draining the HIT still says Connection: close, with one X-Request-Id.
import net from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { startTestProxy, until } from '../helpers/proxy.js';

const INFO = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';

/** One keep-alive connection; `send` writes a GET and resolves with the raw response (head and body by Content-Length). */
async function connection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = net.connect({ host: hostname, port: Number(port) });
  onTestFinished(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let buffered = '';
  let waiting: (() => void) | undefined;
  socket.on('data', (c: Buffer) => {
    buffered += c.toString('latin1');
    waiting?.();
  });
  return {
    async send(path: string): Promise<{ status: number; headers: Array<[string, string]>; body: string }> {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: proxy.golang.org\r\n\r\n`);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end !== -1) {
          const lines = buffered.slice(0, end).split('\r\n');
          const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]);
          const length = Number(headers.find(([k]) => k === 'content-length')?.[1] ?? 0);
          if (buffered.length >= end + 4 + length) {
            const body = buffered.slice(end + 4, end + 4 + length);
            buffered = buffered.slice(end + 4 + length);
            return { status: Number(lines[0]!.split(' ')[1]), headers, body };
          }
        }
        await new Promise<void>((resolve, reject) => {
          waiting = resolve;
          socket.once('close', () => reject(new Error(`closed; got ${JSON.stringify(buffered)}`)));
        });
      }
    },
  };
}

const names = (headers: Array<[string, string]>) => headers.map(([k]) => k);
const value = (headers: Array<[string, string]>, name: string) => headers.filter(([k]) => k === name).map(([, v]) => v);

test('a HIT carries each header once, X-Request-Id equal to its access line; while draining also Connection: close', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal' });
  const c = await connection(p.url);
  const miss = await c.send(INFO);
  const hit = await c.send(INFO);
  const hit2 = await c.send(INFO);
  expect([miss.status, hit.status, hit2.status]).toEqual([200, 200, 200]);
  expect(value(hit.headers, 'x-cache')).toEqual(['HIT']);
  expect(hit.body).toBe(miss.body);
  for (const r of [miss, hit, hit2]) expect(names(r.headers).length).toBe(new Set(names(r.headers)).size);
  expect(names(hit.headers).sort()).toEqual(['cache-control', 'content-length', 'content-type', 'date', 'etag', 'keep-alive', 'connection', 'x-cache', 'x-request-id'].sort());
  expect(value(hit.headers, 'connection')).toEqual(['keep-alive']);

  // The drain gives an idle keep-alive connection a grace to send one more request.
  const closed = p.server.close();
  await until(() => p.logs.some((l) => l.msg === 'draining'));
  const drained = await c.send(INFO);
  await closed;
  expect(value(drained.headers, 'x-cache')).toEqual(['HIT']);
  expect(value(drained.headers, 'connection')).toEqual(['close']);
  expect(value(drained.headers, 'x-request-id')).toHaveLength(1);
  expect(drained.body).toBe(miss.body);

  const ids = [miss, hit, hit2, drained].map((r) => value(r.headers, 'x-request-id')[0]);
  expect(new Set(ids).size).toBe(4);
  expect(p.accessLines().map((l) => [l.reqId, l.cache, l.status])).toEqual(ids.map((id, i) => [id, i === 0 ? 'MISS' : 'HIT', 200]));
});
