// tls.http2: the HTTPS listener offers h2 (node:http2, allowHTTP1). Proves:
// ALPN picks h2 when offered and http/1.1 for a client that offers only that;
// an HTTP/2 request gets the same answer as an HTTP/1.1 one (Host from
// :authority, no connection-specific header breaking node:http2, the backend
// asked once); the real go command downloads the fixture set over it with the
// same hashes as straight from the backend; without tls.http2 only http/1.1
// is offered.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import { expect, onTestFinished, test } from 'vitest';
import { tempDir } from '../helpers/child-proxy.js';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { fixtureModules } from '../helpers/fixture-modules.js';
import { goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy } from '../helpers/proxy.js';

const ZIP = '/example.com/lib/@v/v1.1.0.zip';

async function h2Proxy(http2On: boolean) {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const dir = await tempDir();
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal', listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: null }, tls: { dir, http2: http2On } });
  const port = Number(new URL(p.server.url('https')).port);
  return { ...p, backend, port, ca: await readFile(join(dir, 'localhost.pem')) };
}

/** The ALPN protocol the listener picks when the client offers `protocols`. */
function alpn(port: number, ca: Buffer, protocols: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: protocols }, () => {
      resolve(socket.alpnProtocol ?? false);
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** One GET over HTTP/2 (no Host header: :authority only, as the go command sends). */
function h2get(port: number, ca: Buffer, path: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { ca, servername: 'localhost' });
    session.on('error', reject);
    const req = session.request({ ':path': path, ':method': 'GET' });
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) });
    });
    req.on('error', reject);
    req.end();
  });
}

test('h2 is negotiated when offered; an HTTP/2 GET gets the HTTP/1.1 answer, MISS then HIT', async () => {
  const p = await h2Proxy(true);
  expect(await alpn(p.port, p.ca, ['h2', 'http/1.1'])).toBe('h2');
  expect(await alpn(p.port, p.ca, ['http/1.1'])).toBe('http/1.1');

  const expected = (await get(`${p.backend.url}${ZIP}`)).body;
  const miss = await h2get(p.port, p.ca, ZIP);
  expect(miss.status).toBe(200);
  expect(miss.headers['x-cache']).toBe('MISS');
  expect(miss.headers.connection).toBeUndefined();
  expect(createHash('sha256').update(miss.body).digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
  const hit = await h2get(p.port, p.ca, ZIP);
  expect(hit.status).toBe(200);
  expect(hit.headers['x-cache']).toBe('HIT');
  expect(hit.body.equals(expected)).toBe(true);
  // The same object over HTTP/1.1 on the same listener.
  const h1 = await get(`https://127.0.0.1:${p.port}${ZIP}`, { ca: p.ca, servername: 'localhost', headers: { host: 'localhost' } });
  expect(h1.status).toBe(200);
  expect(h1.body.equals(expected)).toBe(true);
  expect(p.backend.count('/v1/modules/example.com/lib/versions/v1.1.0/zip')).toBe(1);
  const lines = p.accessLines();
  expect(lines.map((l) => [l.host, l.status, l.cache])).toEqual([
    // :authority carries the port, as Host would.
    [`localhost:${p.port}`, 200, 'MISS'],
    [`localhost:${p.port}`, 200, 'HIT'],
    ['localhost', 200, 'HIT'],
  ]);
});

test('the go command downloads the fixture set over h2 with the same hashes as from the backend', async () => {
  const p = await h2Proxy(true);
  const all = fixtureModules().flatMap((m) => m.versions.map((v) => `${m.path}@${v.version}`));
  const sums = async (goproxy: string, extraEnv: Record<string, string> = {}) => {
    const { env, work } = await goWorkspace(goproxy);
    const out = ok(await runGo(['mod', 'download', '-json', ...all], { cwd: work, env: { ...env, ...extraEnv } }));
    return new Map(parseJsonStream(out.stdout).map((r) => [`${r.Path}@${r.Version}`, `${r.Sum} ${r.GoModSum}`]));
  };
  const direct = await sums(p.backend.url);
  const viaH2 = await sums(`https://localhost:${p.port}`, { SSL_CERT_FILE: join(String((p.server.runtime.current.config.tls as { dir: string }).dir), 'localhost.pem') });
  expect(viaH2).toEqual(direct);
  expect(viaH2.size).toBe(all.length);
}, 180_000);

test('without tls.http2 the listener offers only http/1.1', async () => {
  const p = await h2Proxy(false);
  expect(await alpn(p.port, p.ca, ['h2', 'http/1.1'])).toBe('http/1.1');
});
