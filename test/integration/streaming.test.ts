// A MISS streams: the client gets the first bytes while the backend is still
// sending; a client joining mid-stream gets the whole body; the client that
// started the fetch can leave without breaking it for the others.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { startTestProxy, until } from '../helpers/proxy.js';

const CHUNK = 256 * 1024;
const ZIP = '/example.com/slow/@v/v1.0.0.zip';

/** A backend that sends the first chunk of a zip, then waits for `release()`. */
async function slowBackend(): Promise<{ url: string; release: () => void; body: Buffer; requests: () => number }> {
  // Starts like a zip: the cache stores only a .zip with a zip signature.
  const body = Buffer.alloc(4 * CHUNK, 7);
  body.write('PK\x03\x04', 'latin1');
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    res.write(body.subarray(0, CHUNK));
    void released.then(() => res.end(body.subarray(CHUNK)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => {
    release();
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, release, body, requests: () => requests };
}

interface Stream {
  received: () => number;
  done: Promise<Buffer>;
  res: Promise<http.IncomingMessage>;
  abort: () => void;
}

function stream(url: string): Stream {
  const chunks: Buffer[] = [];
  let received = 0;
  let req!: http.ClientRequest;
  let resolveRes!: (r: http.IncomingMessage) => void;
  const res = new Promise<http.IncomingMessage>((r) => (resolveRes = r));
  const done = new Promise<Buffer>((resolve, reject) => {
    req = http.get(url, { agent: false }, (r) => {
      resolveRes(r);
      r.on('data', (c: Buffer) => {
        chunks.push(c);
        received += c.length;
      });
      r.on('end', () => resolve(Buffer.concat(chunks)));
      r.on('error', reject);
    });
    req.on('error', reject);
  });
  done.catch(() => {});
  return { received: () => received, done, res, abort: () => req.destroy() };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the first bytes reach the client before the backend has sent the rest', async () => {
  const b = await slowBackend();
  const p = await startTestProxy({ upstream: b.url, rewrite: 'goproxy' });
  const first = stream(p.url + ZIP);
  const res = await first.res;
  expect(res.headers['x-cache']).toBe('MISS');
  await until(() => first.received() >= CHUNK);
  expect(first.received()).toBeLessThan(b.body.length);

  const late = stream(p.url + ZIP); // joins the fetch under way
  await until(() => late.received() >= CHUNK);
  b.release();
  expect(sha(await first.done)).toBe(sha(b.body));
  expect(sha(await late.done)).toBe(sha(b.body));
  expect(b.requests()).toBe(1);
  expect((await late.res).headers['x-cache']).toBe('MISS');
});

test('the client that started the fetch leaves; the others still get the whole body, and it is cached', async () => {
  const b = await slowBackend();
  const p = await startTestProxy({ upstream: b.url, rewrite: 'goproxy' });
  const leader = stream(p.url + ZIP);
  await until(() => leader.received() >= CHUNK);
  const follower = stream(p.url + ZIP);
  await until(() => follower.received() >= CHUNK);
  leader.abort();
  await until(() => p.accessLines().some((l) => l.status === 499));
  b.release();
  expect(sha(await follower.done)).toBe(sha(b.body));
  expect(b.requests()).toBe(1);
  const hit = stream(p.url + ZIP);
  expect(sha(await hit.done)).toBe(sha(b.body));
  expect((await hit.res).headers['x-cache']).toBe('HIT');
  expect(p.accessLines().find((l) => l.status === 499)).toMatchObject({ err: 'GPR_ERR_CLIENT_GONE', cache: 'MISS' });
});

test('a reload while a fetch is under way: the fetch keeps its backend connection after its starter leaves', async () => {
  const b = await slowBackend();
  const p = await startTestProxy({ upstream: b.url, rewrite: 'goproxy' });
  const leader = stream(p.url + ZIP);
  await until(() => leader.received() >= CHUNK);
  expect((await p.server.reload()).ok).toBe(true); // the old runtime is retired
  const follower = stream(p.url + ZIP); // joins the fetch of the old runtime
  await until(() => follower.received() >= CHUNK);
  leader.abort(); // the old runtime has no request left, but the fetch still needs it
  await until(() => p.accessLines().some((l) => l.status === 499));
  b.release();
  expect(sha(await follower.done)).toBe(sha(b.body));
  expect(b.requests()).toBe(1);
});
