// Issue 10: the disk-tier HIT path (memory tier too small for the object, as
// bench `hit-zip-disk`). Bodies up to 2 MiB go out from one pooled read,
// larger ones stream with backpressure; a pooled buffer is never reused
// under a response still being written; an object purged or replaced by
// this or another process (another worker) is never served from a cached
// descriptor.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { join } from 'node:path';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { DiskTier, encodeHeader, FIXED_BYTES, SpoolState } from '../../src/cache/disk.js';
import { keyMatcher } from '../../src/cache/cache.js';
import { spawnProxy, writeConfigAtomic } from '../helpers/child-proxy.js';
import { tempDir } from '../helpers/temp.js';
import { startTestProxy, until, type TestProxy } from '../helpers/proxy.js';
import { fetchOutcome } from '../helpers/raw-backend.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;
/** The memory tier of bench `hit-zip-disk`: too small for these objects. */
const SMALL_MEMORY = { maxBytes: 256 * 1024, maxEntryBytes: 64 * 1024 };

/** A zip-looking body, distinct per `seed`. */
function zipBody(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(((i + seed) * 2654435761) >>> 0, Math.min(i, n - 4));
  b.write('PK\x03\x04', 0, 'latin1');
  return b;
}

/** The module of a proxy path (`/example.com/a/@v/v1.0.0.zip` -> `example.com/a`). */
const moduleOf = (path: string) => path.slice(1, path.indexOf('/@v/'));

/**
 * A backend answering `body(module, n)` for the backend path of any proxy
 * path (n = how many times that module was asked), counting requests.
 */
async function backend(body: (module: string, n: number) => Buffer): Promise<{ url: string; count: (path: string) => number }> {
  const counts = new Map<string, number>();
  const modules = ['example.com/a', 'example.com/b', 'example.com/c', 'example.com/m', 'example.com/big'];
  const server = http.createServer((req, res) => {
    const module = modules.find((m) => (req.url ?? '').includes(`/${m}/`)) ?? '';
    const n = (counts.get(module) ?? 0) + 1;
    counts.set(module, n);
    const b = body(module, n);
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': b.length, etag: `"${sha256(b).slice(0, 16)}"` });
    res.end(b);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, count: (path) => counts.get(moduleOf(path)) ?? 0 };
}

async function diskProxy(upstream: string): Promise<{ p: TestProxy; dir: string }> {
  const dir = await tempDir('gpr-diskhit-');
  const p = await startTestProxy({ upstream, rewrite: 'goproxy', cache: { dir, ...SMALL_MEMORY } });
  return { p, dir };
}

/** GET on a fresh connection that pauses `pauseMs` after the first chunk, then reads the rest. */
function slowGet(url: string, pauseMs: number): Promise<{ body: Buffer; cache: string | undefined; complete: boolean }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (chunks.length === 1) {
            res.pause();
            setTimeout(() => res.resume(), pauseMs);
          }
        });
        res.on('end', () => resolve({ body: Buffer.concat(chunks), cache: res.headers['x-cache'] as string | undefined, complete: res.complete }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

test('disk HITs of a 1.5 MiB and a 12 MiB zip: concurrent fast and slow readers each get every byte (pooled reads, budget, streaming)', async () => {
  const bodies: Record<string, Buffer> = { '/example.com/a/@v/v1.0.0.zip': zipBody(1.5 * MiB, 1), '/example.com/b/@v/v1.0.0.zip': zipBody(1.5 * MiB + 7, 2), '/example.com/c/@v/v1.0.0.zip': zipBody(12 * MiB, 3) };
  const b = await backend((module) => bodies[`/${module}/@v/v1.0.0.zip`] ?? Buffer.alloc(0));
  const { p } = await diskProxy(b.url);
  for (const path of Object.keys(bodies)) expect((await fetchOutcome(p.url + path)).headers['x-cache']).toBe('MISS');
  await until(() => p.server.cache.fills === 0);

  // 36 at once, a third of them pausing 300 ms: 1.5 MiB x 24 is over the 32 MiB budget, so some stream.
  const paths = Object.keys(bodies);
  const got = await Promise.all(
    Array.from({ length: 36 }, (_, i) => {
      const path = paths[i % 3] as string;
      return i % 3 === 0 ? slowGet(p.url + path, 300).then((r) => ({ path, ...r })) : fetchOutcome(p.url + path).then((r) => ({ path, body: r.body, cache: r.headers['x-cache'], complete: !r.cut }));
    }),
  );
  for (const r of got) expect([r.path, r.cache, r.complete, sha256(r.body)]).toEqual([r.path, 'HIT', true, sha256(bodies[r.path] as Buffer)]);
  // Sequential HITs after that reuse the pooled buffers: still the right bytes.
  for (let i = 0; i < 6; i++) {
    const path = paths[i % 2] as string;
    const r = await fetchOutcome(p.url + path);
    expect([r.headers['x-cache'], r.headers['content-length'], sha256(r.body)]).toEqual(['HIT', String((bodies[path] as Buffer).length), sha256(bodies[path] as Buffer)]);
  }
  for (const path of paths) expect(b.count(path)).toBe(1);
  expect(p.server.cache.disk?.openFiles.entries).toBe(3);
  // Not in the memory tier: these were disk HITs.
  expect(p.server.store.entries).toBe(0);

  // HEAD and a conditional GET of a disk HIT.
  const path = paths[0] as string;
  const head = await new Promise<http.IncomingMessage>((resolve, reject) => http.request(p.url + path, { method: 'HEAD', agent: false }, resolve).on('error', reject).end());
  expect([head.statusCode, head.headers['x-cache'], head.headers['content-length']]).toEqual([200, 'HIT', String((bodies[path] as Buffer).length)]);
  const etag = head.headers.etag as string;
  head.resume();
  const conditional = await fetchOutcome(p.url + path, { 'if-none-match': etag });
  expect([conditional.status, conditional.body.length]).toEqual([304, 0]);
}, 60_000);

/** Splits HTTP/1.1 responses with Content-Length bodies off `data`: [head, body] each. */
function splitResponses(data: Buffer): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let off = 0;
  while (off < data.length) {
    const end = data.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = data.toString('latin1', off, end);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    out.push([head, data.subarray(end + 4, end + 4 + length)]);
    off = end + 4 + length;
  }
  return out;
}

test('a pooled buffer is not reused while its response waits behind another on a pipelined connection', async () => {
  const a = zipBody(1.5 * MiB, 11);
  const bb = zipBody(1.5 * MiB, 12);
  const c = zipBody(12 * MiB, 13);
  const bodies: Record<string, Buffer> = { 'example.com/a': a, 'example.com/b': bb, 'example.com/c': c };
  const b = await backend((module) => bodies[module] ?? Buffer.alloc(0));
  const { p } = await diskProxy(b.url);
  for (const module of Object.keys(bodies)) await fetchOutcome(`${p.url}/${module}/@v/v1.0.0.zip`);
  await until(() => p.server.cache.fills === 0);

  // Two pipelined requests: the 12 MiB c (the client reads nothing for a while), then a, whose
  // answer is read into a pooled buffer and waits in the proxy behind c's.
  const { port } = new URL(p.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  onTestFinished(() => void socket.destroy());
  const chunks: Buffer[] = [];
  socket.pause();
  const ended = new Promise<void>((resolve) => socket.on('end', resolve));
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    if (chunks.reduce((n, x) => n + x.length, 0) >= c.length + a.length) socket.end();
  });
  socket.write('GET /example.com/c/@v/v1.0.0.zip HTTP/1.1\r\nHost: proxy\r\n\r\nGET /example.com/a/@v/v1.0.0.zip HTTP/1.1\r\nHost: proxy\r\n\r\n');
  await until(() => p.server.cache.counts.hits >= 2, 5000);
  // Meanwhile other clients read b into pooled buffers.
  for (let i = 0; i < 4; i++) expect(sha256((await fetchOutcome(`${p.url}/example.com/b/@v/v1.0.0.zip`)).body)).toBe(sha256(bb));
  socket.resume();
  await ended;
  const responses = splitResponses(Buffer.concat(chunks));
  expect(responses.map(([h, body]) => [h.split('\r\n')[0], sha256(body)])).toEqual([
    ['HTTP/1.1 200 OK', sha256(c)],
    ['HTTP/1.1 200 OK', sha256(a)],
  ]);
}, 60_000);

test('over HTTP/2, a pooled buffer is not reused while its stream waits for the client\'s flow-control window', async () => {
  const a = zipBody(1.5 * MiB, 21);
  const bb = zipBody(1.5 * MiB, 22);
  const bodies: Record<string, Buffer> = { 'example.com/a': a, 'example.com/b': bb };
  const b = await backend((module) => bodies[module] ?? Buffer.alloc(0));
  const dir = await tempDir('gpr-diskhit-');
  const tlsDir = await tempDir('gpr-diskhit-tls-');
  const p = await startTestProxy({ upstream: b.url, rewrite: 'goproxy', cache: { dir, ...SMALL_MEMORY }, listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: null }, tls: { dir: tlsDir, http2: true } });
  for (const module of Object.keys(bodies)) await fetchOutcome(`${p.url}/${module}/@v/v1.0.0.zip`);
  await until(() => p.server.cache.fills === 0);
  const ca = await readFile(join(tlsDir, 'localhost.pem'));
  const session = http2.connect(p.server.url('https').replace('127.0.0.1', 'localhost'), { ca, servername: 'localhost' });
  onTestFinished(() => session.destroy());
  const get = (path: string, stall: boolean) => {
    const req = session.request({ ':path': path, ':method': 'GET' });
    const chunks: Buffer[] = [];
    let cache = '';
    req.on('response', (h) => (cache = String(h['x-cache'])));
    const done = new Promise<{ cache: string; body: Buffer }>((resolve, reject) => {
      req.on('end', () => resolve({ cache, body: Buffer.concat(chunks) }));
      req.on('error', reject);
    });
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      if (stall && chunks.length === 1) req.pause();
    });
    req.end();
    return { req, done };
  };
  // a's stream stops after its first chunk: the rest of its pooled buffer waits in the proxy.
  const stalled = get('/example.com/a/@v/v1.0.0.zip', true);
  await until(() => p.server.cache.counts.hits >= 1, 5000);
  for (let i = 0; i < 4; i++) {
    const r = await get('/example.com/b/@v/v1.0.0.zip', false).done;
    expect([r.cache, sha256(r.body)]).toEqual(['HIT', sha256(bb)]);
  }
  stalled.req.resume();
  const r = await stalled.done;
  expect([r.cache, sha256(r.body)]).toEqual(['HIT', sha256(a)]);
}, 60_000);

test('a paused reader of a 40 MiB disk HIT holds the body back (backpressure), then gets every byte', async () => {
  const big = zipBody(40 * MiB, 9);
  const path = '/example.com/big/@v/v1.0.0.zip';
  const b = await backend(() => big);
  const { p } = await diskProxy(b.url);
  expect(sha256((await fetchOutcome(p.url + path)).body)).toBe(sha256(big));
  await until(() => p.server.cache.fills === 0, 10_000);

  // Bytes this process read(2) so far (file and socket reads; proxy and client share the process).
  const rchar = async () => Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);
  const before = await rchar();
  let received = 0;
  const chunks: Buffer[] = [];
  let res!: http.IncomingMessage;
  const done = new Promise<Buffer>((resolve, reject) => {
    http
      .get(p.url + path, { agent: false }, (r) => {
        res = r;
        r.on('data', (c: Buffer) => {
          chunks.push(c);
          received += c.length;
          if (chunks.length === 1) r.pause();
        });
        r.on('end', () => resolve(Buffer.concat(chunks)));
        r.on('error', reject);
      })
      .on('error', reject);
  });
  await until(() => received > 0, 5000);
  await new Promise((r) => setTimeout(r, 500));
  // The proxy read the file only a few chunks ahead of what the socket took: not the 40 MiB body.
  expect((await rchar()) - before).toBeLessThan(20 * MiB);
  expect(res.headers['x-cache']).toBe('HIT');
  res.resume();
  expect(sha256(await done)).toBe(sha256(big));
  expect(b.count(path)).toBe(1);
}, 60_000);

test('a disk object purged through the proxy, or purged or replaced by another process, is never served from the cached descriptor', async () => {
  const path = '/example.com/m/@v/v1.0.0.zip';
  const key = 'zip example.com/m v1.0.0';
  // Each backend answer is different: a body seen twice came from the cache.
  const b = await backend((_path, n) => zipBody(MiB, 100 + n));
  const { p, dir } = await diskProxy(b.url);
  const hit = async (want: string) => {
    const r = await fetchOutcome(p.url + path);
    expect([r.headers['x-cache'], r.cut, r.body.length]).toEqual([want, false, MiB]);
    return sha256(r.body);
  };
  const first = await hit('MISS');
  await until(() => p.server.cache.fills === 0);
  expect(await hit('HIT')).toBe(first);
  expect(p.server.cache.disk?.openFiles.entries).toBe(1);

  // 1. Purge through the running proxy (what the admin listener does).
  expect((await p.server.cache.purge('example.com/m')).map((o) => o.key)).toEqual([key]);
  expect(p.server.cache.disk?.openFiles.entries).toBe(0);
  const second = await hit('MISS');
  expect(second).not.toBe(first);
  await until(() => p.server.cache.fills === 0);
  expect(await hit('HIT')).toBe(second);

  // 2. Another process purges the directory (`cache purge` of a stopped proxy, another worker).
  const other = new DiskTier({ dir, maxBytes: 1e9 });
  await other.init();
  onTestFinished(() => other.close());
  expect((await other.purge(keyMatcher('example.com/m'))).map((e) => e.key)).toEqual([key]);
  const third = await hit('MISS');
  expect(new Set([first, second, third]).size).toBe(3);
  await until(() => p.server.cache.fills === 0);
  expect(await hit('HIT')).toBe(third);

  // 3. Another process replaces the object (purge, then its own fill commits a new inode under the name).
  expect((await other.purge(keyMatcher('example.com/m'))).map((e) => e.key)).toEqual([key]);
  const replacement = zipBody(MiB, 999);
  const lock = await other.tryLock(key);
  if (lock.kind !== 'won') throw new Error(`lock ${lock.kind}`);
  const header = encodeHeader({ key, status: 200, contentType: 'application/zip', etag: '"replaced"', cacheControl: 'public, max-age=31536000, immutable', store: true }, SpoolState.Filling);
  await lock.lock.file.write(header, 0, header.length, 0);
  await lock.lock.file.write(replacement, 0, replacement.length, header.length);
  await other.commit(lock.lock, header.length - FIXED_BYTES, replacement.length);
  await lock.lock.file.close();
  const r = await fetchOutcome(p.url + path);
  expect([r.headers['x-cache'], r.headers.etag, sha256(r.body)]).toEqual(['HIT', '"replaced"', sha256(replacement)]);
  expect(b.count(path)).toBe(3);
}, 60_000);

test('workers: 2 (the compiled proxy): after a purge through the admin listener, neither worker serves the object from its open-file cache', async () => {
  const path = '/example.com/m/@v/v1.0.0.zip';
  // Each backend answer is different: a body seen before the purge must not come back.
  const b = await backend((_module, n) => zipBody(MiB, 500 + n));
  const dir = await tempDir('gpr-diskhit-workers-');
  const configPath = join(dir, 'config.json');
  await writeConfigAtomic(configPath, {
    listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' },
    upstream: b.url,
    rewrite: 'goproxy',
    workers: 2,
    cache: { dir: join(dir, 'cache'), ...SMALL_MEMORY },
    log: { level: 'info' },
  });
  const proxy = spawnProxy({ configPath });
  let ready = 0;
  await proxy.waitFor((l) => l.msg === 'worker ready' && ++ready === 2);
  const own = proxy.lines.filter((l) => l.msg === 'listening' && l.worker === undefined);
  const address = (role: string) => `http://${String(own.find((l) => l.role === role)?.address)}`;
  const url = address('http');

  const round = async (n: number) => (await Promise.all(Array.from({ length: n }, () => fetchOutcome(url + path)))).map((r) => ({ cache: String(r.headers['x-cache']), sha: sha256(r.body), cut: r.cut }));
  const first = await fetchOutcome(url + path);
  expect(first.headers['x-cache']).toBe('MISS');
  // Until both workers have served it from disk (each keeps it open).
  const hitWorkers = () => new Set(proxy.lines.filter((l) => l.msg === 'request' && l.cache === 'HIT').map((l) => l.worker));
  // (The other worker's first request may still tail the fill: a MISS with the same bytes.)
  for (let i = 0; i < 20 && hitWorkers().size < 2; i++) for (const r of await round(8)) expect([r.sha, r.cut]).toEqual([sha256(first.body), false]);
  expect(hitWorkers().size).toBe(2);
  expect(b.count(path)).toBe(1);

  const purged = await new Promise<string>((resolve, reject) => {
    http
      .request(`${address('admin')}/cache/purge?module=example.com/m`, { method: 'POST' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      })
      .on('error', reject)
      .end();
  });
  expect(purged).toContain('zip example.com/m v1.0.0');
  const after = await round(24);
  expect(after.filter((r) => r.sha === sha256(first.body))).toEqual([]);
  expect(after.every((r) => !r.cut)).toBe(true);
  expect(b.count(path)).toBe(2);
  proxy.signal('SIGTERM');
  await proxy.exited;
}, 90_000);
