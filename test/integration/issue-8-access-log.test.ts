// Issue 8, access lines that tell the truth, asserted on the pino lines: an
// aborted download logs the bytes really sent (499, warn); a MISS whose
// backend broke mid-body is at error level; rejected paths lose their query
// string and userinfo; control characters (C0, C1) are escaped; CONNECT and a
// request without Host get a line; every answer carries X-Request-Id, equal
// to the line's reqId; 5xx lines are at level 50; log.access filters.
import { createHash, randomBytes } from 'node:crypto';

/** Random bytes that start like a zip (the cache stores only zips that begin with a local file header). */
function zipLike(n: number): Buffer {
  const b = randomBytes(n);
  b.write('PK\x03\x04', 0, 'latin1');
  return b;
}
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy, until, type LogLine } from '../helpers/proxy.js';

const INFO = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';
const BIG = '/example.com/big/@v/v1.0.0.zip';

async function listen(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function fixture() {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  return backend;
}

/** Sends `request` verbatim on a new connection; resolves with everything received until the server closes. */
function raw(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(Buffer.from(request, 'latin1')));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('no close within 5 s')));
  });
}

const header = (response: string, name: string) => new RegExp(`\r\n${name}: ([^\r]*)\r\n`, 'i').exec(response)?.[1];

test('an aborted download logs the bytes actually sent, 499 and GPR_ERR_CLIENT_GONE at warn', async () => {
  const body = zipLike(16 * 1024 * 1024);
  const upstream = await listen(http.createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body)));
  const p = await startTestProxy({ upstream, rewrite: 'goproxy' });
  expect((await get(p.url + BIG)).body.equals(body)).toBe(true); // now cached
  let received = 0;
  await new Promise<void>((resolve) => {
    const req = http.get(p.url + BIG, { agent: false }, (res) => {
      res.on('data', (c: Buffer) => {
        received += c.length;
        if (received >= 1024 * 1024) req.destroy();
      });
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
  });
  await until(() => p.accessLines().length === 2);
  const line = p.accessLines()[1]!;
  expect(line).toMatchObject({ path: BIG, status: 499, cache: 'HIT', err: 'GPR_ERR_CLIENT_GONE', level: 40 });
  // Sent: what the client read plus what sat in the socket buffers; far from the whole body.
  expect(line.bytes).toBeGreaterThanOrEqual(received - 64 * 1024);
  expect(line.bytes).toBeLessThan(body.length / 2);
});

test('a MISS whose backend breaks off mid-body is logged at error level with GPR_ERR_UPSTREAM_BODY and the bytes sent', async () => {
  const SENT = 100 * 1024;
  const upstream = await listen(
    net.createServer((socket) => {
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: ${1024 * 1024}\r\n\r\n`);
        socket.write(zipLike(SENT), () => setTimeout(() => socket.destroy(), 50));
      });
    }),
  );
  const p = await startTestProxy({ upstream, rewrite: 'goproxy' });
  const got = await get(p.url + BIG).catch((err: Error) => err);
  expect(got).toBeInstanceOf(Error);
  await until(() => p.accessLines().length === 1);
  expect(p.accessLines()[0]).toMatchObject({ path: BIG, status: 200, cache: 'MISS', err: 'GPR_ERR_UPSTREAM_BODY', bytes: SENT, level: 50 });
});

test('rejected paths are logged without query string, fragment or userinfo', async () => {
  const p = await startTestProxy({ upstream: 'http://127.0.0.1:9' });
  const bad = await get(`${p.url}/example.com/a/@v/..%2f..%2fetc.info?token=SECRET1`);
  expect(bad.status).toBe(400);
  const absolute = await raw(p.url, 'GET http://user:SECRET2@proxy.golang.org/not/a/proxy/path?token=SECRET3 HTTP/1.1\r\nHost: proxy.golang.org\r\nConnection: close\r\n\r\n');
  expect(absolute.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
  const lines = p.accessLines();
  expect(lines.map((l) => [l.status, l.path])).toEqual([
    [400, '/example.com/a/@v/..%2f..%2fetc.info'],
    [404, 'http://proxy.golang.org/not/a/proxy/path'],
  ]);
  expect(JSON.stringify(p.logs)).not.toMatch(/SECRET/);
});

test('C0 and C1 control characters in Host and path are escaped in the access line', async () => {
  const p = await startTestProxy({ upstream: 'http://127.0.0.1:9' });
  // C1 in Host reaches the handler; in the path Node's parser rejects it (a client error).
  const inHost = await raw(p.url, `GET ${INFO}?a=1 HTTP/1.1\r\nHost: proxy\x85\x9b[2J.golang.org\x01\r\nConnection: close\r\n\r\n`);
  expect(inHost.split('\r\n')[0]).toMatch(/^HTTP\/1\.1 4\d\d /);
  const inHost2 = await raw(p.url, `GET ${INFO} HTTP/1.1\r\nHost: proxy\x85\x9b[2J.golang.org\r\nConnection: close\r\n\r\n`);
  expect(inHost2.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found'); // backend down: the notfound policy
  const inPath = await raw(p.url, 'GET /x\x85y\x1b[2J?token=SECRET HTTP/1.1\r\nHost: proxy.golang.org\r\n\r\n');
  expect(inPath.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  expect(p.accessLines().map((l) => ({ host: l.host, path: l.path, status: l.status }))).toEqual([
    { host: 'proxy\\x85\\x9b[2J.golang.org\\x01', path: INFO, status: 400 },
    { host: 'proxy\\x85\\x9b[2J.golang.org', path: INFO, status: 404 },
    { host: 'proxy.golang.org', path: '/x\\x85y\\x1b[2J', status: 400 },
  ]);
  expect(JSON.stringify(p.logs)).not.toMatch(/SECRET/);
  // eslint-disable-next-line no-control-regex -- looking for raw control characters is the point
  expect(JSON.stringify(p.logs)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
});

test('CONNECT and an HTTP/1.1 request without Host each get an answer, an X-Request-Id and an access line', async () => {
  const p = await startTestProxy({ upstream: 'http://127.0.0.1:9' });
  const connect = await raw(p.url, 'CONNECT proxy.golang.org:443 HTTP/1.1\r\nHost: proxy.golang.org:443\r\n\r\n');
  expect(connect.split('\r\n')[0]).toBe('HTTP/1.1 405 Method Not Allowed');
  expect(header(connect, 'allow')).toBe('GET, HEAD');
  const noHost = await raw(p.url, `GET ${INFO} HTTP/1.1\r\nConnection: close\r\n\r\n`);
  expect(noHost.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  expect(noHost).toContain('go-proxy-rewriter: malformed HTTP request: HTTP/1.1 request without Host header\n');
  const lines = p.accessLines();
  expect(lines.map((l) => ({ method: l.method, host: l.host, path: l.path, status: l.status, err: l.err }))).toEqual([
    { method: 'CONNECT', host: 'proxy.golang.org:443', path: 'proxy.golang.org:443', status: 405, err: 'GPR_ERR_METHOD_NOT_ALLOWED' },
    { method: 'GET', host: '', path: INFO, status: 400, err: 'GPR_ERR_BAD_REQUEST' },
  ]);
  expect([header(connect, 'x-request-id'), header(noHost, 'x-request-id')]).toEqual(lines.map((l) => l.reqId));
});

test('X-Request-Id on a MISS, a HIT, a 304, an error and a client error equals the access line reqId', async () => {
  const backend = await fixture();
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal' });
  const miss = await get(p.url + INFO);
  const hit = await get(p.url + INFO);
  const notModified = await get(p.url + INFO, { headers: { 'if-none-match': hit.headers.etag as string } });
  const notFound = await get(`${p.url}/nope`);
  const tooLarge = await raw(p.url, `GET ${INFO} HTTP/1.1\r\nHost: proxy.golang.org\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  expect([miss.status, hit.status, notModified.status, notFound.status]).toEqual([200, 200, 304, 404]);
  expect(tooLarge.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  const ids = [miss, hit, notModified, notFound].map((r) => r.headers['x-request-id']).concat(header(tooLarge, 'x-request-id'));
  expect(new Set(ids).size).toBe(5);
  expect(p.accessLines().map((l) => l.reqId)).toEqual(ids);
  expect(p.accessLines().map((l) => [l.status, l.cache])).toEqual([
    [200, 'MISS'],
    [200, 'HIT'],
    [304, 'HIT'],
    [404, null],
    [431, null],
  ]);
});

test('5xx access lines are at error level (50), 4xx and 2xx at info (30)', async () => {
  const backend = await fixture();
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal', onUpstreamFailure: 'error' });
  expect((await get(p.url + INFO)).status).toBe(200);
  expect((await get(`${p.url}/nope`)).status).toBe(404);
  backend.setFailure('500');
  expect((await get(`${p.url}/example.com/!burnt!sushi/toml/@v/list`)).status).toBe(502);
  expect(p.accessLines().map((l) => [l.status, l.level, l.err])).toEqual([
    [200, 30, null],
    [404, 30, 'GPR_ERR_NOT_PROXY_PATH'],
    [502, 50, 'GPR_ERR_UPSTREAM_STATUS'],
  ]);
});

test.each([
  ['all', [200, 404, 502]],
  ['errors', [404, 502]],
  ['off', []],
] as const)('log.access "%s" writes the lines of %j', async (access, statuses) => {
  const backend = await fixture();
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal', onUpstreamFailure: 'error', log: { access } });
  expect((await get(p.url + INFO)).status).toBe(200);
  expect((await get(`${p.url}/nope`)).status).toBe(404);
  backend.setFailure('500');
  expect((await get(`${p.url}/example.com/!burnt!sushi/toml/@v/list`)).status).toBe(502);
  await new Promise((r) => setTimeout(r, 20));
  expect(p.accessLines().map((l: LogLine) => l.status)).toEqual(statuses);
  // The request metrics count every request whatever the access log keeps.
  const metrics = await p.server.metrics.registry.getSingleMetricAsString('gpr_requests_total');
  expect(metrics).toMatch(/status="200",cache="MISS"} 1$/m);
  expect(metrics).toMatch(/status="502",cache="MISS"} 1$/m);
});

test('the sha256 of a body is unchanged by slicing: a cached 1 MiB + 1 byte object arrives whole', async () => {
  const body = zipLike(1024 * 1024 + 1);
  const upstream = await listen(http.createServer((_req, res) => res.writeHead(200, { 'content-length': body.length }).end(body)));
  const p = await startTestProxy({ upstream, rewrite: 'goproxy' });
  await get(p.url + BIG);
  const hit = await get(p.url + BIG);
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(createHash('sha256').update(hit.body).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  expect(p.accessLines()[1]).toMatchObject({ status: 200, bytes: body.length, err: null });
});
