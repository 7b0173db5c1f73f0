// Issue 8, limits: a slowloris client gets 408 within limits.headersTimeoutMs;
// at limits.maxConnections new clients are closed while the admin /healthz
// keeps answering, and they are served again once connections close; an idle
// keep-alive connection is closed after limits.keepAliveTimeoutMs; a TLS 1.2
// client cannot renegotiate; the default cap follows the fd limit.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { expect, onTestFinished, test } from 'vitest';
import { defaultMaxConnections, openFileLimit } from '../../src/server/limits.js';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';

const INFO = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';

function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => resolve(socket));
    socket.on('error', reject);
    onTestFinished(() => void socket.destroy());
  });
}

/** Everything the server sends until it closes the connection, and when it closed (ms after `since`). */
function readUntilClose(socket: net.Socket, since: number): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, closedAfterMs: performance.now() - since }));
  });
}

test('slowloris: headers trickled byte by byte get 408 within headersTimeoutMs, with an access line and X-Request-Id', async () => {
  const HEADERS_TIMEOUT_MS = 1000;
  const p = await startTestProxy({ upstream: 'http://127.0.0.1:9', limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS } });
  const socket = await connect(p.url);
  const started = performance.now();
  const closed = readUntilClose(socket, started);
  socket.write('GET /example.com/a/@v/list HTTP/1.1\r\nHost: proxy.golang.org\r\n');
  const trickle = setInterval(() => socket.writable && socket.write('X'), 100);
  onTestFinished(() => clearInterval(trickle));
  const { text, closedAfterMs } = await closed;
  clearInterval(trickle);
  expect(text.split('\r\n')[0]).toBe('HTTP/1.1 408 Request Timeout');
  expect(text).toMatch(/\r\nx-request-id: [0-9a-z]+-[0-9a-z]+\r\n/);
  expect(text.endsWith(`go-proxy-rewriter: request headers did not arrive within ${HEADERS_TIMEOUT_MS} ms\n`)).toBe(true);
  // Node checks the timeout every TIMEOUT_CHECK_MS (500 ms).
  expect(closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
  expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 1000);
  expect(p.accessLines()).toEqual([expect.objectContaining({ status: 408, err: 'GPR_ERR_REQUEST_TIMEOUT', level: 30 })]);
});

test('maxConnections reached: new clients are closed, /healthz answers, and clients are served again once connections close', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const MAX = 3;
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal', limits: { maxConnections: MAX } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: MAX });
  onTestFinished(() => agent.destroy());
  // MAX keep-alive connections, each answered once and then idle.
  const first = await Promise.all(Array.from({ length: MAX }, () => get(p.url + INFO, { agent })));
  expect(first.map((r) => r.status)).toEqual([200, 200, 200]);
  expect(Object.values(agent.freeSockets).flat()).toHaveLength(MAX);

  const refused = await get(p.url + INFO).catch((err: Error & { code?: string }) => err);
  expect(refused).toBeInstanceOf(Error);
  expect((refused as Error & { code?: string }).code).toMatch(/^(ECONNRESET|EPIPE)$/);
  const healthz = await get(`${p.server.url('admin')}/healthz`);
  expect({ status: healthz.status, body: healthz.body.toString() }).toEqual({ status: 200, body: 'ok\n' });
  const metrics = (await get(`${p.server.url('admin')}/metrics`)).body.toString();
  expect(metrics).toMatch(/^gpr_connections_refused_total 1$/m);
  expect(metrics).toMatch(/^gpr_connections_open 3$/m);
  expect(metrics).toMatch(/^gpr_connections_max 3$/m);
  expect(p.logs.filter((l) => l.msg === 'connection refused: limits.maxConnections reached')).toHaveLength(1);

  agent.destroy(); // the idle connections close
  const deadline = Date.now() + 5000;
  while (!/^gpr_connections_open 0$/m.test((await get(`${p.server.url('admin')}/metrics`)).body.toString())) {
    if (Date.now() > deadline) throw new Error('connections did not close');
    await new Promise((r) => setTimeout(r, 20));
  }
  const again = await get(p.url + INFO);
  expect(again.status).toBe(200);
  expect(JSON.parse(again.body.toString())).toMatchObject({ Version: 'v1.0.0' });
});

test('an idle keep-alive connection is closed after keepAliveTimeoutMs', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal', limits: { keepAliveTimeoutMs: 300 } });
  const socket = await connect(p.url);
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now())));
  let answeredAt = 0;
  socket.on('data', (c: Buffer) => {
    if (c.toString('latin1').includes('"Version"')) answeredAt = performance.now();
  });
  socket.write(`GET ${INFO} HTTP/1.1\r\nHost: proxy.golang.org\r\n\r\n`);
  const closedAt = await closed;
  expect(answeredAt).toBeGreaterThan(0);
  expect(closedAt - answeredAt).toBeGreaterThanOrEqual(250);
  expect(closedAt - answeredAt).toBeLessThan(2000);
});

test('client-initiated TLS renegotiation is refused', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const dir = await tempDir('gpr-reneg-');
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal', listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' }, tls: { dir } });
  const ca = await readFile(join(dir, 'ca.pem'));
  const port = Number(new URL(p.server.url('https')).port);
  const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'proxy.golang.org', ca, maxVersion: 'TLSv1.2' }, () => resolve(s));
    s.on('error', reject);
  });
  onTestFinished(() => void socket.destroy());
  expect(socket.getProtocol()).toBe('TLSv1.2');
  const outcome = await new Promise<string>((resolve) => {
    socket.on('error', (err: Error & { code?: string }) => resolve(`error ${err.code ?? err.message}`));
    socket.on('close', () => resolve('closed'));
    const ok = socket.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err ? `error ${(err as Error & { code?: string }).code ?? err.message}` : 'renegotiated'));
    if (!ok) resolve('not started');
  });
  expect(outcome).toBe('error ERR_SSL_NO_RENEGOTIATION');
  socket.destroy();
  // The connection is gone: the server does not wait for it, or answer on it.
  const closeAt = performance.now();
  await p.server.close();
  expect(performance.now() - closeAt).toBeLessThan(2000);
  expect(p.accessLines()).toEqual([]);
});

test.each([
  [1024, 256, 448],
  [65536, 256, 64960],
  [100, 256, 16],
  [Infinity, 256, 100_000],
  [undefined, 256, 1024],
])('default maxConnections: fd limit %s, %s backend sockets -> %s', (fds, backend, expected) => {
  expect(defaultMaxConnections(fds, backend)).toBe(expected);
});

test('the fd limit is read from /proc/self/limits', () => {
  const sample = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n';
  expect(openFileLimit(sample)).toBe(1024);
  expect(openFileLimit('Max open files            unlimited            unlimited            files\n')).toBe(Infinity);
  expect(openFileLimit()).toBeGreaterThan(0);
});
