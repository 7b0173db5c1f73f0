// The MISS path's fast path (issue 10): a small body the fill held whole until
// the backend's end (.info, a small .mod, lists) is answered as one buffer
// (Cache.answer's body is a Buffer: the handler writes head and body at once),
// for the request that started the fill and for every joiner, with the same
// head, bytes, ETag and counts as before; and the fill's one idle timer (not
// one per chunk) still cuts a stalled body but not a slow, steady one.
import { createHash } from 'node:crypto';
import net from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { startTestProxy, until } from '../helpers/proxy.js';
import { get } from '../helpers/http-get.js';
import { fetchOutcome, rawBackend } from '../helpers/raw-backend.js';
import { tempDir } from '../helpers/temp.js';
import { openCache } from '../../src/cache/cache.js';
import { cacheKey } from '../../src/cache/http.js';
import { parseProxyPath } from '../../src/goproxy/path.js';
import { createUpstream } from '../../src/upstream/forward.js';

/** Sends `request` on a raw socket; resolves with the first chunk read and everything read until the close. */
function rawFirstChunk(url: string, request: string): Promise<{ first: string; all: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(port), hostname, () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => resolve({ first: chunks[0]?.toString('latin1') ?? '', all: Buffer.concat(chunks).toString('latin1') }));
    socket.on('error', reject);
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function backend(): Promise<FixtureBackend> {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  return b;
}

const INFO = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';
const INFO_INTERNAL = '/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/info';
const MOD = '/example.com/!burnt!sushi/toml/@v/v1.0.0.mod';
const MOD_INTERNAL = '/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/mod';

test('Cache.answer: a small body whole at the head is one buffer (for the starter and a joiner); a zip is a stream', async () => {
  const b = await backend();
  b.setDelayMs(50);
  const cache = await openCache({ maxBytes: 1 << 20, maxEntryBytes: 1 << 19, diskMaxBytes: 0 }, { warn: () => {} });
  const upstream = createUpstream({ url: b.url, connectMs: 1000, responseMs: 2000 });
  onTestFinished(() => upstream.close());
  const ask = (path: string, internal: string) => {
    const parsed = parseProxyPath(path);
    if (!parsed.ok) throw new Error(path);
    return cache.answer(cacheKey(parsed.request), parsed.request, {
      fetch: () => upstream.fetch(internal, {}),
      ttl: { mutableTtlMs: 60_000, notFoundTtlMs: 1000 },
      staleIfErrorMs: 0,
      idleTimeoutMs: 2000,
      maxObjectBytes: 1 << 20,
      upstreamLabel: b.url,
    });
  };
  const want = (await get(b.url + INFO_INTERNAL)).body;
  const [starter, joiner] = await Promise.all([ask(INFO, INFO_INTERNAL), ask(INFO, INFO_INTERNAL)]);
  for (const a of [starter, joiner]) {
    expect(a.cache).toBe('MISS');
    expect(Buffer.isBuffer(a.body)).toBe(true);
    expect((a.body as Buffer).equals(want)).toBe(true);
    expect(a.headers['content-length']).toBe(want.length);
    expect(a.length).toBeUndefined();
  }
  expect(b.count(INFO_INTERNAL)).toBe(2); // the direct GET and one fill for both
  const zip = await ask('/example.com/big/@v/v1.0.0.zip', '/v1/modules/example.com/big/versions/v1.0.0/zip');
  expect(Buffer.isBuffer(zip.body)).toBe(false);
  const chunks: Buffer[] = [];
  for await (const c of zip.body as AsyncIterable<Buffer>) chunks.push(c);
  expect(sha256(Buffer.concat(chunks))).toBe(sha256(b.zip('example.com/big', 'v1.0.0')));
  expect(zip.cache).toBe('BYPASS'); // larger than maxEntryBytes: streamed through
  // A small zip (Content-Length within WHOLE_BODY_BYTES) is held whole too.
  const small = await ask('/example.com/lib/@v/v1.0.0.zip', '/v1/modules/example.com/lib/versions/v1.0.0/zip');
  expect(small.cache).toBe('MISS');
  expect(Buffer.isBuffer(small.body)).toBe(true);
  expect(sha256(small.body as Buffer)).toBe(sha256(b.zip('example.com/lib', 'v1.0.0')));
  expect(small.headers['content-length']).toBe((small.body as Buffer).length);
  await cache.idle();
  expect(cache.counts).toEqual({ misses: 3, hits: 0, stale: 0, bypass: 1 });
});

test('a small MISS: head and whole body in the first read, equal to the HIT after it', async () => {
  const b = await backend();
  const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
  const direct = await get(b.url + INFO_INTERNAL);
  const miss = await rawFirstChunk(p.url, `GET ${INFO} HTTP/1.1\r\nHost: proxy.golang.org\r\nConnection: close\r\n\r\n`);
  // The head and the complete body arrive together: one write, not a flushed head and a body after it.
  expect(miss.first).toBe(miss.all);
  const [head, body] = miss.all.split('\r\n\r\n') as [string, string];
  expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(head).toMatch(/\r\nx-cache: MISS\r\n/i);
  expect(head).toMatch(new RegExp(`\\r\\ncontent-length: ${direct.body.length}\\r\\n`, 'i'));
  expect(head).not.toMatch(/transfer-encoding/i);
  expect(Buffer.from(body, 'latin1').equals(direct.body)).toBe(true);
  const etag = /\r\netag: ("[^"]+")/i.exec(head)?.[1];
  expect(etag).toMatch(/^"k-/);

  const hit = await get(p.url + INFO);
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.headers.etag).toBe(etag);
  expect(hit.body.equals(direct.body)).toBe(true);
  expect(b.count(INFO_INTERNAL)).toBe(2); // the direct GET and the one miss
  expect(p.accessLines().map((l) => [l.cache, l.status, l.bytes])).toEqual([
    ['MISS', 200, direct.body.length],
    ['HIT', 200, direct.body.length],
  ]);
  expect(p.server.cache.counts).toMatchObject({ misses: 1, hits: 1 });
});

test('20 concurrent requests for one cold .info: one backend request, every answer the whole body with its length', async () => {
  const b = await backend();
  b.setDelayMs(100); // the first fetch is still open while the others join it
  const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
  const results = await Promise.all(Array.from({ length: 20 }, () => get(p.url + INFO)));
  b.setDelayMs(0);
  const want = (await get(b.url + INFO_INTERNAL)).body;
  expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
  expect(new Set(results.map((r) => sha256(r.body)))).toEqual(new Set([sha256(want)]));
  expect(new Set(results.map((r) => r.headers['content-length']))).toEqual(new Set([String(want.length)]));
  expect(new Set(results.map((r) => r.headers['x-cache']))).toEqual(new Set(['MISS']));
  expect(new Set(results.map((r) => r.headers.etag)).size).toBe(1);
  expect(b.count(INFO_INTERNAL)).toBe(2); // one for all 20, and the direct GET
  await until(() => p.server.cache.fills === 0);
  expect(p.accessLines().filter((l) => l.cache === 'MISS' && l.bytes === want.length)).toHaveLength(20);
});

test('HEAD, If-None-Match and HTTP/1.0 on a small MISS', async () => {
  const b = await backend();
  const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
  const want = (await get(b.url + MOD_INTERNAL)).body;

  const head = await get(p.url + MOD, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers['x-cache']).toBe('MISS');
  expect(head.headers['content-length']).toBe(String(want.length));
  expect(head.body.length).toBe(0);
  const etag = head.headers.etag as string;

  await p.server.cache.purge('example.com/BurntSushi/toml');
  const notModified = await get(p.url + MOD, { headers: { 'if-none-match': etag } });
  expect([notModified.status, notModified.headers['x-cache'], notModified.body.length]).toEqual([304, 'MISS', 0]);

  await p.server.cache.purge('example.com/BurntSushi/toml');
  const old = await rawFirstChunk(p.url, `GET ${MOD} HTTP/1.0\r\nHost: proxy.golang.org\r\n\r\n`);
  const [oldHead, oldBody] = old.all.split('\r\n\r\n') as [string, string];
  expect(oldHead).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(oldHead).toMatch(new RegExp(`\\r\\ncontent-length: ${want.length}\\r\\n`, 'i'));
  expect(Buffer.from(oldBody, 'latin1').equals(want)).toBe(true);
  expect(b.count(MOD_INTERNAL)).toBe(4); // the direct GET and three misses
});

test('with a disk tier a small MISS is answered from memory and still committed to disk', async () => {
  const b = await backend();
  const dir = await tempDir();
  const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', cache: { dir } });
  const want = (await get(b.url + MOD_INTERNAL)).body;
  const miss = await get(p.url + MOD);
  expect([miss.status, miss.headers['x-cache'], miss.headers['content-length']]).toEqual([200, 'MISS', String(want.length)]);
  expect(miss.body.equals(want)).toBe(true);
  await p.server.cache.idle();
  // Out of memory, the object comes back from the disk tier.
  p.server.store.delete(`mod example.com/!burnt!sushi/toml v1.0.0`);
  const fromDisk = await get(p.url + MOD);
  expect([fromDisk.status, fromDisk.headers['x-cache'], fromDisk.headers.etag]).toEqual([200, 'HIT', miss.headers.etag]);
  expect(fromDisk.body.equals(want)).toBe(true);
  expect(b.count(MOD_INTERNAL)).toBe(2);
});

/** A raw backend that sends a 5-chunk chunked body, `gapMs` between chunks, then (unless `stallAfter`) the terminator. */
function chunkedSlow(gapMs: number, stallAfter?: number) {
  const chunks = Array.from({ length: 5 }, (_, i) => Buffer.alloc(1000, 97 + i));
  return {
    body: Buffer.concat(chunks),
    scenario: (socket: net.Socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nTransfer-Encoding: chunked\r\n\r\n');
      let i = 0;
      const next = () => {
        if (socket.destroyed) return;
        if (stallAfter !== undefined && i === stallAfter) return; // and never another byte
        if (i === chunks.length) return void socket.write('0\r\n\r\n');
        const c = chunks[i++] as Buffer;
        // A zip must open with PK\x03\x04 to be stored.
        const data = i === 1 ? Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), c.subarray(4)]) : c;
        socket.write(`${data.length.toString(16)}\r\n`);
        socket.write(data);
        socket.write('\r\n');
        setTimeout(next, gapMs);
      };
      next();
    },
  };
}

test('the idle timer: a slow, steady body longer than timeouts.responseMs completes; a stalled one is cut with GPR_ERR_UPSTREAM_TIMEOUT', async () => {
  const steady = chunkedSlow(150);
  const stalled = chunkedSlow(50, 2);
  const rb = await rawBackend((socket, path) => (path.includes('v1.0.0') ? steady : stalled).scenario(socket));
  const p = await startTestProxy({ upstream: rb.url, rewrite: 'internal', timeouts: { responseMs: 400 } });

  const t0 = performance.now();
  const ok = await fetchOutcome(`${p.url}/example.com/slow/@v/v1.0.0.zip`);
  expect(performance.now() - t0).toBeGreaterThan(600); // 4 gaps of 150 ms: longer than responseMs in total
  expect(ok.cut).toBe(false);
  const expected = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), steady.body.subarray(4)]);
  expect(sha256(ok.body)).toBe(sha256(expected));
  const hit = await fetchOutcome(`${p.url}/example.com/slow/@v/v1.0.0.zip`);
  expect([hit.headers['x-cache'], sha256(hit.body)]).toEqual(['HIT', sha256(expected)]);

  const cut = await fetchOutcome(`${p.url}/example.com/slow/@v/v2.0.0.zip`);
  expect(cut.status).toBe(200);
  expect(cut.cut).toBe(true);
  expect(cut.body.length).toBe(2000);
  await until(() => p.accessLines().length === 3);
  expect(p.accessLines().map((l) => [l.cache, l.err])).toEqual([
    ['MISS', null],
    ['HIT', null],
    ['MISS', 'GPR_ERR_UPSTREAM_TIMEOUT'],
  ]);
  expect(rb.requests).toHaveLength(2);
  expect(p.server.store.entries).toBe(1);
});
