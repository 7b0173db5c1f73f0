// The proxy against the real fixture backend over real sockets: rewriting,
// X-Go-Proxy-Original-Path, caching (HIT/MISS/STALE/BYPASS, ETag, 304, HEAD),
// single-flight, failure policy, bad requests and the access log.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { describe, expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { startTestProxy, until } from '../helpers/proxy.js';

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(url: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends raw bytes and returns the raw answer (for requests an HTTP client would refuse to send). */
function raw(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
  });
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function backend(): Promise<FixtureBackend> {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  return b;
}

const ZIP = '/example.com/!burnt!sushi/toml/@v/v1.0.0.zip';
const ZIP_INTERNAL = '/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/zip';

describe('rewrite and forward', () => {
  test('internal preset: the backend sees exactly the rewritten path and the original path header', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const cases: Array<[string, string]> = [
      ['/example.com/!burnt!sushi/toml/@v/list', '/v1/modules/example.com/!burnt!sushi/toml/list'],
      ['/example.com/pseudo/@latest', '/v1/modules/example.com/pseudo/latest'],
      ['/example.com/rc/mod/@v/v1.0.0-%21r%21c1.info', '/v1/modules/example.com/rc/mod/versions/v1.0.0-!r!c1/info'],
      ['/example.com/major/v2/@v/v2.1.0.mod', '/v1/modules/example.com/major/v2/versions/v2.1.0/mod'],
      ['/example.com/incompat/@v/v3.0.0+incompatible.zip', '/v1/modules/example.com/incompat/versions/v3.0.0+incompatible/zip'],
    ];
    for (const [clientPath, upstreamPath] of cases) {
      const res = await get(p.url + clientPath);
      expect(res.status, clientPath).toBe(200);
      const seen = b.requests.at(-1);
      expect(seen?.path).toBe(upstreamPath);
      expect(seen?.headers['x-go-proxy-original-path']).toBe(clientPath.replace(/%21/g, '!'));
      expect(seen?.headers['x-forwarded-proto']).toBe('http');
      expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen?.headers['via']).toBe('1.1 go-proxy-rewriter');
      expect(seen?.headers['x-forwarded-host']).toBe(new URL(p.url).host);
    }
    expect(b.requests).toHaveLength(cases.length);
  });

  test('goproxy preset under a path prefix', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: `${b.url}/api/go/repo`, rewrite: 'goproxy' });
    const res = await get(p.url + ZIP);
    expect(res.status).toBe(200);
    expect(b.requests.map((r) => r.path)).toEqual([`/api/go/repo${ZIP}`]);
    expect(sha256(res.body)).toBe(sha256(b.zip('example.com/BurntSushi/toml', 'v1.0.0')));
  });

  test('custom templates', async () => {
    const b = await backend();
    const p = await startTestProxy({
      upstream: b.url,
      rewrite: {
        list: '/v1/modules/{module}/list',
        latest: '/v1/modules/{module}/latest',
        info: '/v1/modules/{module}/versions/{version}/info',
        mod: '/v1/modules/{module}/versions/{version}/mod',
        zip: '/api/go/repo/{module}/@v/{version}.zip',
        sumdb: '/sumdb/{name}/{path}',
      },
    });
    expect((await get(p.url + ZIP)).status).toBe(200);
    expect(b.requests.map((r) => r.path)).toEqual([`/api/go/repo${ZIP}`]);
  });
});

describe('cache', () => {
  test('MISS then HIT with the same bytes, ETag, 304 and immutable Cache-Control; HEAD works', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const first = await get(p.url + ZIP);
    const second = await get(p.url + ZIP);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(sha256(second.body)).toBe(sha256(first.body));
    expect(sha256(first.body)).toBe(sha256(b.zip('example.com/BurntSushi/toml', 'v1.0.0')));
    expect(b.count(ZIP_INTERNAL)).toBe(1);
    expect(second.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(second.headers.etag).toBe(first.headers.etag);
    expect(first.headers.etag).toMatch(/^"sha256-/); // the backend's ETag is kept

    const revalidated = await get(p.url + ZIP, { headers: { 'if-none-match': String(first.headers.etag) } });
    expect(revalidated.status).toBe(304);
    expect(revalidated.body).toHaveLength(0);
    const head = await get(p.url + ZIP, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(first.body.length));
    expect(head.body).toHaveLength(0);
    expect(b.count(ZIP_INTERNAL)).toBe(1);
  });

  test('an immutable MISS without a backend ETag carries one, equal to the later HIT', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const path = '/example.com/!burnt!sushi/toml/@v/v1.0.0.mod';
    const miss = await get(p.url + path);
    const hit = await get(p.url + path);
    expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect(miss.headers.etag).toMatch(/^"k-/);
    expect(hit.headers.etag).toBe(miss.headers.etag);
  });

  test('mutable list: fresh for mutableTtlMs, then refetched; STALE when the backend fails', async () => {
    const b = await backend();
    let now = 1_000_000;
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', cache: { mutableTtlMs: 60_000 } }, { now: () => now });
    const list = '/example.com/lib/@v/list';
    const a = await get(p.url + list);
    expect(a.headers['x-cache']).toBe('MISS');
    expect(a.headers['cache-control']).toBe('public, max-age=60');
    expect(a.headers.etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/); // body hash
    expect(a.body.toString()).toBe('v1.0.0\nv1.1.0\n');
    expect((await get(p.url + list)).headers['x-cache']).toBe('HIT');
    now += 60_001;
    expect((await get(p.url + list)).headers['x-cache']).toBe('MISS');
    expect(b.count('/v1/modules/example.com/lib/list')).toBe(2);
    now += 60_001;
    b.setFailure('500');
    const stale = await get(p.url + list);
    expect(stale.status).toBe(200);
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(stale.body.toString()).toBe('v1.0.0\nv1.1.0\n');
    const line = p.accessLines().at(-1);
    expect(line).toMatchObject({ cache: 'STALE', status: 200, err: 'GPR_ERR_UPSTREAM_STATUS' });
  });

  test('404 is passed through and cached for notFoundTtlMs', async () => {
    const b = await backend();
    let now = 0;
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', cache: { notFoundTtlMs: 30_000 } }, { now: () => now });
    const missing = '/example.com/nope/@v/v1.0.0.info';
    const first = await get(p.url + missing);
    expect(first.status).toBe(404);
    expect(first.headers['cache-control']).toBe('public, max-age=30');
    expect((await get(p.url + missing)).headers['x-cache']).toBe('HIT');
    now += 30_001;
    expect((await get(p.url + missing)).headers['x-cache']).toBe('MISS');
    expect(b.count('/v1/modules/example.com/nope/versions/v1.0.0/info')).toBe(2);
  });

  test('100 concurrent requests for one uncached zip make one backend request and get identical bodies', async () => {
    const b = await backend();
    b.setDelayMs(100); // keep the first fetch open while the rest arrive
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const path = '/example.com/big/@v/v1.0.0.zip';
    const results = await Promise.all(Array.from({ length: 100 }, () => get(p.url + path)));
    const want = sha256(b.zip('example.com/big', 'v1.0.0'));
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(new Set(results.map((r) => sha256(r.body)))).toEqual(new Set([want]));
    expect(b.count('/v1/modules/example.com/big/versions/v1.0.0/zip')).toBe(1);
    await until(() => p.server.cache.fills === 0);
  });

  test('a body over maxEntryBytes streams through as BYPASS and is not stored', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', cache: { maxEntryBytes: 1024 * 1024, maxBytes: 8 * 1024 * 1024 } });
    const path = '/example.com/big/@v/v1.0.0.zip';
    const first = await get(p.url + path);
    const second = await get(p.url + path);
    expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['BYPASS', 'BYPASS']);
    expect(sha256(second.body)).toBe(sha256(b.zip('example.com/big', 'v1.0.0')));
    expect(b.count('/v1/modules/example.com/big/versions/v1.0.0/zip')).toBe(2);
    expect(p.server.store.entries).toBe(0);
  });

  test('filling the cache beyond maxBytes keeps it at or under maxBytes', async () => {
    const b = await backend();
    const maxBytes = 8 * 1024 * 1024;
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', cache: { maxBytes, maxEntryBytes: 7 * 1024 * 1024 } });
    const paths = [
      '/example.com/big/@v/v1.0.0.zip',
      '/example.com/!burnt!sushi/toml/@v/v1.0.0.zip',
      '/example.com/app/@v/v1.2.0.zip',
      '/example.com/lib/@v/v1.1.0.zip',
      '/example.com/big/@v/v1.0.0.zip',
      '/example.com/base/@v/v1.0.0.zip',
      '/example.com/big/@v/v1.0.0.mod',
    ];
    for (const path of paths) {
      expect((await get(p.url + path)).status).toBe(200);
      expect(p.server.store.sizeBytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(p.server.store.sizeBytes).toBeGreaterThan(6 * 1024 * 1024);
  });
});

describe('backend failures', () => {
  test('backend stopped: cached immutable objects still served, uncached get the notfound answer', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const zip = await get(p.url + ZIP);
    await b.close();
    const again = await get(p.url + ZIP);
    expect(again.headers['x-cache']).toBe('HIT');
    expect(sha256(again.body)).toBe(sha256(zip.body));
    const uncached = await get(p.url + '/example.com/lib/@v/v1.1.0.zip');
    expect(uncached.status).toBe(404);
    expect(uncached.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(uncached.headers['cache-control']).toBe('no-store');
    expect(uncached.body.toString()).toMatch(/^go-proxy-rewriter: backend failed.*unreachable.*ECONNREFUSED/);
    expect(p.accessLines().at(-1)).toMatchObject({ status: 404, err: 'GPR_ERR_UPSTREAM_UNREACHABLE', cache: 'MISS' });
  });

  test('onUpstreamFailure "error": 502 for a 5xx backend, 504 for a timeout', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', onUpstreamFailure: 'error', timeouts: { responseMs: 200 } });
    b.setFailure('500');
    const bad = await get(p.url + '/example.com/lib/@v/v1.1.0.mod');
    expect(bad.status).toBe(502);
    expect(bad.body.toString()).toContain('answered 500');
    b.setFailure('none');
    b.setDelayMs(1000);
    const slow = await get(p.url + '/example.com/lib/@v/v1.0.0.mod');
    expect(slow.status).toBe(504);
    expect(slow.body.toString()).toContain('did not answer within 200 ms');
    expect(p.accessLines().map((l) => l.err)).toEqual(['GPR_ERR_UPSTREAM_STATUS', 'GPR_ERR_UPSTREAM_TIMEOUT']);
  });
});

describe('bad requests get a clear 4xx and the proxy keeps serving', () => {
  test.each([
    ['raw upper case', 'GET /github.com/BurntSushi/toml/@v/list HTTP/1.1', 400, /invalid module path/],
    ['dot-dot', 'GET /example.com/../x/@v/list HTTP/1.1', 400, /\.\./],
    ['encoded dot-dot', 'GET /%2e%2e/x/@v/list HTTP/1.1', 400, /./],
    ['not a proxy path', 'GET /healthz HTTP/1.1', 404, /not a Go module proxy path/],
    ['10 KB path', `GET /example.com/${'a'.repeat(10 * 1024)}/@v/list HTTP/1.1`, 414, /limit/],
    ['POST', 'POST /example.com/x/@v/list HTTP/1.1', 405, /method POST is not allowed/],
    ['oversized headers', `GET /example.com/x/@v/list HTTP/1.1\r\nx-big: ${'b'.repeat(20 * 1024)}`, 431, /headers are larger/],
    ['bad syntax', 'GET /example.com/x/@v/list HTTP/9', 400, /malformed/],
    ['a loop back into the proxy', 'GET /example.com/x/@v/list HTTP/1.1\r\nvia: 1.1 go-proxy-rewriter', 508, /request loop/],
  ])('%s', async (_name, requestLine, status, message) => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const answer = await raw(p.url, `${requestLine}\r\nhost: x\r\nconnection: close\r\n\r\n`);
    expect(answer.split('\r\n')[0]).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(answer).toMatch(/content-type: text\/plain; charset=utf-8/i);
    expect(answer.split('\r\n\r\n')[1]).toMatch(message);
    expect(b.requests).toHaveLength(0);
    const next = await get(p.url + '/example.com/lib/@v/list');
    expect(next.status).toBe(200);
    await until(() => p.accessLines().length === 2);
    expect(p.accessLines()[0]).toMatchObject({ status });
  });
});

describe('access log', () => {
  test('exactly one line per request with the fixed fields', async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    await get(p.url + ZIP, { headers: { authorization: 'Bearer secret', cookie: 'a=b' } });
    await get(p.url + ZIP);
    await until(() => p.accessLines().length === 2);
    const [miss, hit] = p.accessLines();
    expect(Object.keys(miss ?? {}).sort()).toEqual(
      ['level', 'time', 'pid', 'msg', 'reqId', 'method', 'host', 'path', 'upstreamPath', 'status', 'cache', 'bytes', 'durationMs', 'upstreamMs', 'err'].sort(),
    );
    expect(miss).toMatchObject({ level: 30, method: 'GET', path: ZIP, upstreamPath: ZIP_INTERNAL, status: 200, cache: 'MISS', err: null });
    expect(miss?.bytes).toBe(b.zip('example.com/BurntSushi/toml', 'v1.0.0').length);
    expect(typeof miss?.upstreamMs).toBe('number');
    expect(hit).toMatchObject({ cache: 'HIT', upstreamMs: null });
    expect(JSON.stringify(p.logs)).not.toMatch(/secret|a=b/);
  });
});
