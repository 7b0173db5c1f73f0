// The proxy's HTTPS listener with each kind of certificate material: the CA
// in tls.dir, a bring-your-own CA, a static leaf; refusals (outside the
// allowlist, no SNI) counted and logged once per name; 421 when Host differs
// from SNI; a reload with broken material keeps the old certificates.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { requireTool } from '../helpers/go.js';
import { startTestProxy, until, type TestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';

const run = promisify(execFile);
const INFO = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';

async function httpsProxy(tlsConfig: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<TestProxy & { port: number }> {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  const p = await startTestProxy({ upstream: b.url, rewrite: 'internal', listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' }, tls: tlsConfig, ...extra });
  return { ...p, port: Number(new URL(p.server.url('https')).port) };
}

function get(port: number, servername: string | undefined, ca: Buffer | string, host = servername): Promise<{ status: number; body: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, path: INFO, servername, ca, headers: { host: host ?? '127.0.0.1' }, agent: false, ...(servername ? {} : { checkServerIdentity: () => undefined }) },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, issuer: (res.socket as tls.TLSSocket).getPeerX509Certificate()?.issuer ?? '' }));
      },
    );
    req.on('error', reject);
  });
}

function handshake(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      socket.destroy();
      resolve('ok');
    });
    socket.on('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
  });
}

test('the CA in tls.dir: allowed names get a leaf it signed; others and no-SNI are refused, counted, logged once per name; Host must match SNI', async () => {
  const dir = await tempDir('gpr-tlsl-');
  const p = await httpsProxy({ dir });
  const ca = await readFile(join(dir, 'ca.pem'));
  const ok = await get(p.port, 'proxy.golang.org', ca);
  expect(ok.status).toBe(200);
  expect(JSON.parse(ok.body)).toMatchObject({ Version: 'v1.0.0' });
  expect((await get(p.port, 'goproxy.cn', ca)).status).toBe(200);
  // localhost gets the self-signed certificate of the embedded default.
  expect((await get(p.port, 'localhost', await readFile(join(dir, 'localhost.pem')))).status).toBe(200);

  const misdirected = await get(p.port, 'goproxy.cn', ca, 'proxy.golang.org');
  expect(misdirected.status).toBe(421);
  expect(misdirected.body).toContain('does not match the TLS server name goproxy.cn');

  for (let i = 0; i < 3; i++) expect(await handshake(p.port, 'evil.example.com')).not.toBe('ok');
  expect(await handshake(p.port, undefined)).not.toBe('ok');
  await until(() => p.logs.filter((l) => l.msg === 'tls handshake refused').length === 2);
  expect(p.logs.filter((l) => l.msg === 'tls handshake refused').map((l) => l.servername)).toEqual(['evil.example.com', '(no SNI)']);
  const metrics = await p.server.metrics.registry.getSingleMetricAsString('gpr_tls_refused_total');
  expect(metrics).toContain('gpr_tls_refused_total{reason="name_not_allowed"} 3');
  expect(metrics).toContain('gpr_tls_refused_total{reason="no_sni"} 1');
});

test('a bring-your-own CA signs the leaves; a reload pointing at a broken key keeps serving with the old one', async () => {
  const dir = await tempDir('gpr-tlsl-');
  const openssl = requireTool('openssl');
  const caCert = join(dir, 'corp-ca.pem');
  const caKey = join(dir, 'corp-ca-key.pem');
  await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-sha256', '-subj', '/CN=Corp Root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', caKey, '-out', caCert]);
  const configPath = join(dir, 'config.json');
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  const config = { upstream: b.url, rewrite: 'internal', listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: null }, tls: { dir, ca: { cert: caCert, key: caKey } } };
  await writeFile(configPath, JSON.stringify(config));
  const p = await startTestProxy(config, { configPath });
  const port = Number(new URL(p.server.url('https')).port);
  const first = await get(port, 'proxy.golang.org', await readFile(caCert));
  expect(first.status).toBe(200);
  expect(first.issuer).toContain('CN=Corp Root');

  await writeFile(join(dir, 'broken-key.pem'), '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
  await writeFile(configPath, JSON.stringify({ ...config, tls: { dir, ca: { cert: caCert, key: join(dir, 'broken-key.pem') } } }));
  const reload = await p.server.reload();
  expect(reload.ok).toBe(false);
  expect(p.logs.find((l) => l.msg === 'config reload failed')).toMatchObject({ err: { code: 'GPR_ERR_CA_INVALID' } });
  expect(p.server.runtime.current.generation).toBe(1);
  expect((await get(port, 'proxy.golang.org', await readFile(caCert))).status).toBe(200);
});

test('a static leaf is served for the allowed names only', async () => {
  const dir = await tempDir('gpr-tlsl-');
  const openssl = requireTool('openssl');
  const cert = join(dir, 'leaf.pem');
  const key = join(dir, 'leaf-key.pem');
  const hosts = ['proxy.golang.org', 'goproxy.cn', 'goproxy.io', 'sum.golang.org'];
  await run(openssl, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30', '-sha256', '-subj', '/CN=proxy.golang.org',
    '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`, '-keyout', key, '-out', cert]);
  const p = await httpsProxy({ dir, cert, key });
  const pem = await readFile(cert);
  expect((await get(p.port, 'sum.golang.org', pem)).issuer).toContain('CN=proxy.golang.org');
  expect((await get(p.port, 'proxy.golang.org', pem)).status).toBe(200);
  expect(await handshake(p.port, 'evil.example.com')).not.toBe('ok');
});

test('TLS 1.2 and 1.3 only, ALPN http/1.1, and sessions resume', async () => {
  const dir = await tempDir('gpr-tlsl-');
  const p = await httpsProxy({ dir });
  const ca = await readFile(join(dir, 'ca.pem'));
  const connect = (opts: tls.ConnectionOptions) =>
    new Promise<{ alpn: string | false | null; reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: p.port, servername: 'proxy.golang.org', ca, ALPNProtocols: ['h2', 'http/1.1'], ...opts });
      let session: Buffer | undefined;
      let alpn: string | false | null = false;
      let reused = false;
      socket.on('session', (s: Buffer) => {
        session = s;
        socket.end();
      });
      socket.on('secureConnect', () => {
        alpn = socket.alpnProtocol;
        reused = socket.isSessionReused();
        if (reused) socket.end();
      });
      socket.on('close', () => resolve({ alpn, reused, session }));
      socket.on('error', reject);
    });
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await connect({ minVersion: version, maxVersion: version });
    expect(first.alpn).toBe('http/1.1');
    expect(first.reused).toBe(false);
    const second = await connect({ minVersion: version, maxVersion: version, session: first.session });
    expect(second.reused, version).toBe(true);
  }
  await expect(connect({ minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' })).rejects.toThrow();
});
