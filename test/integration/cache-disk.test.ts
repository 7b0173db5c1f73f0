// Issue 7: the disk tier and spooled fills against misbehaving backends:
// what each client receives (a cut connection, never a short response that
// looks complete) and whether anything was stored; a stalled reader does not
// hold back another; diskMaxBytes holds; Location, Content-Encoding and
// no-store/Set-Cookie semantics.
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { describe, expect, onTestFinished, test } from 'vitest';
import { tempDir } from '../helpers/temp.js';
import { startTestProxy, until, type TestProxy } from '../helpers/proxy.js';
import { fetchOutcome, rawBackend, type Scenario } from '../helpers/raw-backend.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ZIP = '/example.com/m/@v/v1.0.0.zip';
const INFO = '/example.com/m/@v/v1.0.0.info';
const zipBody = (n: number) => Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(n - 4, 1)]);

/** Every committed object file under the disk tier. */
async function committed(dir: string): Promise<string[]> {
  const data = join(dir, 'v1', 'data');
  const out: string[] = [];
  for (const d of await readdir(data).catch(() => [] as string[])) for (const f of await readdir(join(data, d))) out.push(join(data, d, f));
  return out;
}

async function diskProxy(upstream: string, cache: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<{ p: TestProxy; dir: string }> {
  const dir = await tempDir('gpr-disk-');
  const p = await startTestProxy({ upstream, rewrite: 'goproxy', cache: { dir, ...cache }, ...extra });
  return { p, dir };
}

const head = (extra: string) => `HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\n${extra}\r\n`;

describe('broken bodies: the client sees a cut, nothing is stored', () => {
  const cases: Array<[string, Scenario]> = [
    [
      'Content-Length short, then FIN',
      (s) => {
        s.write(head('Content-Length: 100000\r\n'));
        s.end(zipBody(40_000));
      },
    ],
    [
      'chunked body without its terminator',
      (s) => {
        s.write(head('Transfer-Encoding: chunked\r\n'));
        const b = zipBody(40_000);
        s.end(`${b.length.toString(16)}\r\n${b.toString('latin1')}\r\n`, 'latin1');
      },
    ],
    [
      'close-delimited body cut by a reset',
      (s) => {
        s.write(head('Connection: close\r\n'));
        s.write(zipBody(40_000), () => setTimeout(() => s.resetAndDestroy(), 50));
      },
    ],
    [
      'a hang mid-body (timeouts.responseMs)',
      (s) => {
        s.write(head('Content-Length: 100000\r\n'));
        s.write(zipBody(40_000)); // and nothing more
      },
    ],
  ];
  test.each(cases)('%s', async (_name, scenario) => {
    const b = await rawBackend(scenario);
    const { p, dir } = await diskProxy(b.url, {}, { timeouts: { connectMs: 1000, responseMs: 500 } });
    const got = await fetchOutcome(p.url + ZIP);
    expect(got.status).toBe(200);
    expect(got.cut).toBe(true);
    expect(got.body.length).toBeLessThan(100_000);
    // Nothing stored: the next request goes to the backend again.
    await fetchOutcome(p.url + ZIP);
    expect(b.count(ZIP)).toBe(2);
    expect(await committed(dir)).toEqual([]);
    await until(() => p.server.cache.fills === 0, 3000);
    expect(await readdir(join(dir, 'v1', 'fill'))).toEqual([]);
    expect(p.accessLines().at(0)?.err).toMatch(/^GPR_ERR_UPSTREAM_(BODY|TIMEOUT)$/);
  });

  test('an HTTP/1.0 client of a cut Content-Length body also sees the cut (the length is sent)', async () => {
    const b = await rawBackend((s) => {
      s.write(head('Content-Length: 100000\r\n'));
      s.end(zipBody(40_000));
    });
    const { p } = await diskProxy(b.url);
    const { port } = new URL(p.url);
    const raw = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      const sock = new net.Socket();
      sock.connect(Number(port), '127.0.0.1', () => sock.write(`GET ${ZIP} HTTP/1.0\r\nHost: x\r\n\r\n`));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', () => {});
      sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
    expect(raw).toMatch(/content-length: 100000/i);
    expect(raw.length - raw.indexOf('\r\n\r\n') - 4).toBeLessThan(100_000);
  });
});

describe('answers that pass through without being stored', () => {
  test('a close-delimited .zip that ends cleanly is served whole, as BYPASS, and not stored', async () => {
    const body = zipBody(30_000);
    const b = await rawBackend((s) => {
      s.write(head('Connection: close\r\n'));
      s.end(body);
    });
    const { p, dir } = await diskProxy(b.url);
    const got = await fetchOutcome(p.url + ZIP);
    expect([got.status, got.cut, got.headers['x-cache'], sha256(got.body)]).toEqual([200, false, 'BYPASS', sha256(body)]);
    await fetchOutcome(p.url + ZIP);
    expect(b.count(ZIP)).toBe(2);
    expect(await committed(dir)).toEqual([]);
  });

  test('302 passes its Location and is not stored', async () => {
    const b = await rawBackend((s) => s.end('HTTP/1.1 302 Found\r\nLocation: http://blobs.example/abc?sig=1\r\nContent-Length: 0\r\n\r\n'));
    const { p, dir } = await diskProxy(b.url);
    const got = await fetchOutcome(p.url + ZIP);
    expect([got.status, got.headers.location, got.headers['x-cache']]).toEqual([302, 'http://blobs.example/abc?sig=1', 'BYPASS']);
    expect((await fetchOutcome(p.url + ZIP)).headers.location).toBe('http://blobs.example/abc?sig=1');
    expect(b.count(ZIP)).toBe(2);
    expect(await committed(dir)).toEqual([]);
  });

  const info = Buffer.from('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}');
  test.each([
    ['Cache-Control: no-store', 'Cache-Control: no-store\r\n'],
    ['Cache-Control: private', 'Cache-Control: private, max-age=60\r\n'],
    ['Set-Cookie', 'Set-Cookie: session=abc\r\n'],
  ])('%s is answered as BYPASS and never stored', async (_name, header) => {
    const b = await rawBackend((s) => s.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${header}Content-Length: ${info.length}\r\n\r\n${info.toString()}`));
    const { p, dir } = await diskProxy(b.url);
    const got = await fetchOutcome(p.url + INFO);
    expect([got.status, got.headers['x-cache'], got.body.toString()]).toEqual([200, 'BYPASS', info.toString()]);
    expect(got.headers['set-cookie']).toBeUndefined();
    await fetchOutcome(p.url + INFO);
    expect(b.count(INFO)).toBe(2);
    expect(await committed(dir)).toEqual([]);
    expect(p.server.store.entries).toBe(0);
  });

  test.each([
    ['an HTML .info', INFO, 'text/html', '<html><body>login</body></html>', 'not JSON'],
    ['a .info without Version', INFO, 'application/json', '{"Time":"x"}', 'JSON without a Version'],
    ['a .zip that is not a zip', ZIP, 'application/zip', 'this is not a zip file at all', 'not a zip archive'],
    ['an HTML .mod', '/example.com/m/@v/v1.0.0.mod', 'text/html', '<!DOCTYPE html><p>error</p>', 'markup'],
  ])('%s is answered once as BYPASS, logged naming the backend, and not stored', async (_name, path, type, body, reason) => {
    const b = await rawBackend((s) => s.end(`HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
    const { p, dir } = await diskProxy(b.url);
    const got = await fetchOutcome(p.url + path);
    expect([got.status, got.headers['x-cache'], got.headers['cache-control'], got.body.toString()]).toEqual([200, 'BYPASS', 'no-store', body]);
    await fetchOutcome(p.url + path);
    expect(b.count(path)).toBe(2);
    expect(await committed(dir)).toEqual([]);
    const warning = p.logs.find((l) => l.msg === 'backend answer not stored');
    expect(warning?.backend).toBe(b.url);
    expect(String(warning?.reason)).toContain(reason);
  });

  test('a valid .info, .mod and .zip are stored on disk and replayed with their headers', async () => {
    const bodies: Record<string, [string, Buffer]> = {
      [INFO]: ['application/json', info],
      ['/example.com/m/@v/v1.0.0.mod']: ['text/plain; charset=utf-8', Buffer.from('module example.com/m\n\ngo 1.21\n')],
      [ZIP]: ['application/zip', zipBody(10_000)],
    };
    const b = await rawBackend((s, path) => {
      const [type, body] = bodies[path] as [string, Buffer];
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nETag: "e-${body.length}"\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: ${body.length}\r\n\r\n`);
      s.end(body);
    });
    const { p, dir } = await diskProxy(b.url);
    for (const [path, [, body]] of Object.entries(bodies)) {
      const miss = await fetchOutcome(p.url + path);
      expect([miss.headers['x-cache'], sha256(miss.body)]).toEqual(['MISS', sha256(body)]);
    }
    await until(() => p.server.cache.fills === 0);
    expect(await committed(dir)).toHaveLength(3);
    p.server.store.resize(1, 1); // empty the memory tier: the HITs come from disk
    for (const [path, [type, body]] of Object.entries(bodies)) {
      const hit = await fetchOutcome(p.url + path);
      expect([hit.headers['x-cache'], hit.headers['content-type'], hit.headers.etag, hit.headers['last-modified'], sha256(hit.body)]).toEqual([
        'HIT',
        type,
        `"e-${body.length}"`,
        'Mon, 01 Jan 2024 00:00:00 GMT',
        sha256(body),
      ]);
    }
    expect(b.requests).toHaveLength(3);
  });

  test('Content-Encoding: gzip is kept on the MISS and on the HIT', async () => {
    const list = 'v1.0.0\nv1.1.0\n';
    const gz = gzipSync(list);
    const b = await rawBackend((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`);
      s.end(gz);
    });
    const { p } = await diskProxy(b.url);
    const path = '/example.com/m/@v/list';
    const miss = await fetchOutcome(p.url + path);
    const hit = await fetchOutcome(p.url + path);
    for (const got of [miss, hit]) {
      expect(got.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(got.body).toString()).toBe(list);
    }
    expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(b.requests).toHaveLength(1);
  });
});

/** A backend serving `body` for any path at full speed, counting requests. */
async function bulkBackend(body: (path: string) => Buffer): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const b = body(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': b.length });
    res.end(b);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

test('a stalled reader of a cold 50 MiB zip does not hold back another, outlives timeouts.responseMs, then finishes', async () => {
  const big = zipBody(50 * 1024 * 1024);
  const want = sha256(big);
  const b = await bulkBackend(() => big);
  const { p } = await diskProxy(b.url, {}, { timeouts: { connectMs: 1000, responseMs: 1000 } });

  // The first client reads one chunk, then stops.
  let received = 0;
  const chunks: Buffer[] = [];
  let stalled!: http.IncomingMessage;
  const firstDone = new Promise<Buffer>((resolve, reject) => {
    http.get(p.url + ZIP, { agent: false }, (res) => {
      stalled = res;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        received += c.length;
        if (received > 0 && chunks.length === 1) res.pause();
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
  });
  await until(() => received > 0, 5000);

  const started = performance.now();
  const second = await fetchOutcome(p.url + ZIP);
  const secondMs = performance.now() - started;
  expect([second.cut, sha256(second.body)]).toEqual([false, want]);
  expect(secondMs).toBeLessThan(5000);

  await new Promise((r) => setTimeout(r, 1500)); // past timeouts.responseMs
  expect(received).toBeLessThan(big.length);
  stalled.resume();
  expect(sha256(await firstDone)).toBe(want);
  expect(b.requests).toHaveLength(1);
}, 60_000);

test('filling beyond diskMaxBytes keeps the directory at or under it', async () => {
  const size = 1024 * 1024;
  const b = await bulkBackend((path) => {
    const body = zipBody(size);
    body.write(path, 8, 'latin1');
    return body;
  });
  const diskMaxBytes = 3.5 * size;
  const { p, dir } = await diskProxy(b.url, { diskMaxBytes, maxBytes: 2 * size, maxEntryBytes: 64 * 1024 });
  const total = async () => (await Promise.all((await committed(dir)).map((f) => stat(f).catch(() => ({ size: 0 }))))).reduce((n, s) => n + s.size, 0);
  for (let i = 0; i < 10; i++) {
    const got = await fetchOutcome(`${p.url}/example.com/m/@v/v1.0.${i}.zip`);
    expect(got.body.length).toBe(size);
    await until(() => p.server.cache.fills === 0);
    expect(await total()).toBeLessThanOrEqual(diskMaxBytes);
  }
  expect(await total()).toBeGreaterThan(2 * size);
  // The most recent objects are the ones kept.
  expect((await fetchOutcome(`${p.url}/example.com/m/@v/v1.0.9.zip`)).headers['x-cache']).toBe('HIT');
  expect((await fetchOutcome(`${p.url}/example.com/m/@v/v1.0.0.zip`)).headers['x-cache']).toBe('MISS');
  await until(() => p.server.cache.fills === 0);
});

test('memory only (cache.dir null): a fill larger than maxEntryBytes streams through as BYPASS', async () => {
  const big = zipBody(3 * 1024 * 1024);
  const b = await bulkBackend(() => big);
  const p = await startTestProxy({ upstream: b.url, rewrite: 'goproxy', cache: { dir: null, maxBytes: 4 * 1024 * 1024, maxEntryBytes: 1024 * 1024 } });
  const [x, y] = await Promise.all([fetchOutcome(p.url + ZIP), fetchOutcome(p.url + ZIP)]);
  expect([x.cut, y.cut, sha256(x.body), sha256(y.body)]).toEqual([false, false, sha256(big), sha256(big)]);
  expect(p.server.store.entries).toBe(0);
  expect(p.server.cache.disk).toBeUndefined();
});

test('an HTTP/1.0 client of a chunked backend body gets a Content-Length, or a cut when the body breaks off', async () => {
  const body = zipBody(50_000);
  const b = await rawBackend((s, path) => {
    s.write(head('Transfer-Encoding: chunked\r\n'));
    const chunk = `${body.length.toString(16)}\r\n${body.toString('latin1')}\r\n`;
    s.end(path.endsWith('v1.0.0.zip') ? `${chunk}0\r\n\r\n` : chunk, 'latin1');
  });
  const { p } = await diskProxy(b.url);
  const { port } = new URL(p.url);
  const http10 = (path: string) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      const sock = new net.Socket();
      sock.connect(Number(port), '127.0.0.1', () => sock.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('error', () => {});
      sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
  const whole = await http10(ZIP);
  expect(whole).toMatch(/^HTTP\/1\.1 200 /);
  expect(whole).toMatch(/content-length: 50000\r\n/i);
  expect(sha256(Buffer.from(whole.slice(whole.indexOf('\r\n\r\n') + 4), 'latin1'))).toBe(sha256(body));
  expect(await http10('/example.com/m/@v/v1.0.1.zip')).toBe(''); // cut, never a short "complete" body
});

test('a disk fill with a large Content-Length keeps no memory-tier copy (bench/fill-memory.ts)', async () => {
  const body = zipBody(3 * 1024 * 1024);
  const sockets: net.Socket[] = [];
  const b = await rawBackend((s) => {
    s.write(head(`Content-Length: ${body.length}\r\n`));
    s.write(body.subarray(0, 1_500_000));
    sockets.push(s);
  });
  const { p } = await diskProxy(b.url);
  const chunks: Buffer[] = [];
  let received = 0;
  let midFillBytes = -1;
  const got = await new Promise<{ status: number; xcache: unknown }>((resolve, reject) => {
    http
      .get(p.url + ZIP, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          received += c.length;
          // 1.4 MB through the fill: a copy (kept up to 2 MiB) would show in fillBytes now.
          if (midFillBytes < 0 && received >= 1_400_000) {
            midFillBytes = p.server.cache.fillBytes;
            sockets[0]?.end(body.subarray(1_500_000));
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, xcache: res.headers['x-cache'] }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  expect(got).toEqual({ status: 200, xcache: 'MISS' });
  expect(midFillBytes).toBe(0);
  expect(sha256(Buffer.concat(chunks))).toBe(sha256(body));
  await until(() => p.server.cache.fills === 0);
  const again = await fetchOutcome(p.url + ZIP);
  expect(again.headers['x-cache']).toBe('HIT');
  expect(sha256(again.body)).toBe(sha256(body));
  expect(b.count(ZIP)).toBe(1);
});

test('cache.maxConcurrentFills queues fills beyond the cap; every request is answered whole', async () => {
  const SIZE = 1024 * 1024;
  const bodyOf = (n: number) => Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.alloc(SIZE - 4, createHash('sha256').update(`zip ${n}`).digest())]);
  let inFlight = 0;
  let maxInFlight = 0;
  const b = await rawBackend((s, path) => {
    if (path.endsWith('.info')) return void s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{"Version":"v1.0.0"}      `);
    const n = Number(/v1\.0\.(\d+)\.zip$/.exec(path)?.[1]);
    const body = bodyOf(n);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    s.write(head(`Content-Length: ${body.length}\r\n`));
    s.write(body.subarray(0, SIZE / 2));
    setTimeout(() => {
      inFlight--; // before the last bytes: the proxy may start the next fetch as soon as they arrive
      s.write(body.subarray(SIZE / 2));
    }, 100);
  });
  const { p } = await diskProxy(b.url, { maxConcurrentFills: 2 });
  const url = (n: number) => `${p.url}/example.com/m/@v/v1.0.${n}.zip`;
  let queuedSeen = 0;
  const sampler = setInterval(() => (queuedSeen = Math.max(queuedSeen, p.server.cache.fillsQueued)), 2);
  onTestFinished(() => clearInterval(sampler));
  const gets = Array.from({ length: 10 }, (_, n) => fetchOutcome(url(n)));
  const joiner = fetchOutcome(url(9)); // joins the queued fill of v1.0.9
  const heads = Array.from({ length: 4 }, (_, i) => fetch(url(10 + i), { method: 'HEAD' }));
  // Only .zip fills take a slot: an .info is answered while zips queue.
  await until(() => p.server.cache.fillsQueued > 0, 2000);
  const info = await fetchOutcome(p.url + INFO);
  expect(p.server.cache.fillsQueued).toBeGreaterThan(0);
  expect(info.status).toBe(200);
  expect(JSON.parse(info.body.toString())).toEqual({ Version: 'v1.0.0' });
  const answers = await Promise.all([...gets, joiner]);
  answers.forEach((got, i) => {
    expect(got.status).toBe(200);
    expect(got.cut).toBe(false);
    expect(sha256(got.body)).toBe(sha256(bodyOf(i === 10 ? 9 : i)));
  });
  for (const h of await Promise.all(heads)) {
    expect(h.status).toBe(200);
    expect(h.headers.get('content-length')).toBe(String(SIZE));
  }
  await until(() => p.server.cache.fills === 0, 5000);
  expect(queuedSeen).toBeGreaterThanOrEqual(8);
  expect(maxInFlight).toBe(2);
  for (let n = 0; n < 14; n++) expect(b.count(`/example.com/m/@v/v1.0.${n}.zip`)).toBe(1);
  // Committed whole: the HEADs' objects too.
  for (const n of [3, 12]) {
    const again = await fetchOutcome(url(n));
    expect(again.headers['x-cache']).toBe('HIT');
    expect(sha256(again.body)).toBe(sha256(bodyOf(n)));
  }
});
