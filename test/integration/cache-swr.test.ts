// Issue 9, stale-while-revalidate: an expired list, @latest and query .info
// are answered from cache at once (X-Cache: STALE) while one background
// request refreshes them from a slow backend; the next request sees the
// fresh copy (HIT).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { startTestProxy, until } from '../helpers/proxy.js';
import { fetchOutcome } from '../helpers/raw-backend.js';

test('an expired list, @latest and query .info answer STALE at once while a 2 s backend refreshes them; then HIT with the new content', async () => {
  let generation = 1;
  let delayMs = 0;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const g = generation;
    setTimeout(() => {
      const body = req.url?.endsWith('/list') ? `v1.0.${g}\n` : JSON.stringify({ Version: `v1.0.${g}`, Time: '2024-01-01T00:00:00Z' });
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let now = 1_000_000;
  const p = await startTestProxy({ upstream: url, rewrite: 'goproxy', cache: { mutableTtlMs: 60_000 } }, { now: () => now });
  const paths = ['/example.com/m/@v/list', '/example.com/m/@latest', '/example.com/m/@v/master.info'];
  for (const path of paths) expect((await fetchOutcome(p.url + path)).headers['x-cache']).toBe('MISS');

  now += 60_001;
  generation = 2;
  delayMs = 2000;
  for (const path of paths) {
    const started = performance.now();
    const got = await fetchOutcome(p.url + path);
    const ms = performance.now() - started;
    expect([got.headers['x-cache'], got.body.toString().includes('v1.0.1')]).toEqual(['STALE', true]);
    expect(ms).toBeLessThan(500);
  }
  // One background request per object, even when asked again meanwhile.
  expect((await fetchOutcome(p.url + paths[0])).headers['x-cache']).toBe('STALE');
  await until(() => p.server.cache.fills === 0, 5000);
  expect(requests.length).toBe(6);
  for (const path of paths) {
    const got = await fetchOutcome(p.url + path);
    expect([got.headers['x-cache'], got.body.toString().includes('v1.0.2')]).toEqual(['HIT', true]);
  }
}, 20_000);
