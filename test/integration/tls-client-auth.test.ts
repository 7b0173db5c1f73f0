// Mutual TLS (tls.clientCa): with it, the HTTPS listener requires a client
// certificate that CA verifies. Checked with the real curl (--cert/--key) over
// TLS 1.3 and 1.2: a certificate from the client CA is served; none, or one
// from another CA, is refused, counted in gpr_tls_refused_total{reason=
// "client_cert"} and logged once per peer and problem. A reload picks up
// another client CA, refuses a file that is not a CA, and turning it off
// serves clients without a certificate again. Test CAs come from openssl.
import { copyFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { requireTool } from '../helpers/go.js';
import { openssl } from '../helpers/openssl.js';
import { startTestProxy, until } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';

const INFO = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';
const HOST = 'proxy.golang.org';

/** A CA and a client certificate it signed (EKU clientAuth), made by openssl in `dir`. */
async function clientCa(dir: string, name: string): Promise<{ ca: string; cert: string; key: string }> {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await openssl(['req', '-x509', ...ec, '-days', '2', '-sha256', '-subj', `/CN=${name} client CA`, '-keyout', p('ca-key.pem'), '-out', p('ca.pem'), '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  await openssl(['req', ...ec, '-subj', `/CN=${name} ingress`, '-keyout', p('key.pem'), '-out', p('csr.pem')]);
  await writeFile(p('ext.cnf'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  await openssl(['x509', '-req', '-in', p('csr.pem'), '-CA', p('ca.pem'), '-CAkey', p('ca-key.pem'), '-CAcreateserial', '-days', '2', '-sha256', '-extfile', p('ext.cnf'), '-out', p('cert.pem')]);
  return { ca: p('ca.pem'), cert: p('cert.pem'), key: p('key.pem') };
}

interface Curl {
  code: number;
  body: string;
  stderr: string;
}

/** curl to https://proxy.golang.org:PORT (resolved to 127.0.0.1), trusting the proxy's CA, with an optional client certificate. */
function curl(port: number, caPem: string, client: { cert: string; key: string } | undefined, tlsMax: '1.2' | '1.3'): Promise<Curl> {
  const args = ['-sS', '--max-time', '10', '--resolve', `${HOST}:${port}:127.0.0.1`, '--cacert', caPem, '--capath', '/nonexistent', '--tls-max', tlsMax];
  if (client) args.push('--cert', client.cert, '--key', client.key);
  args.push(`https://${HOST}:${port}${INFO}`);
  return new Promise((resolve) => {
    execFile(requireTool('curl'), args, { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, body: stdout, stderr });
    });
  });
}

test('tls.clientCa: a client certificate from that CA is served; none or a foreign one is refused, counted and logged once; reload swaps the CA', { timeout: 60_000 }, async () => {
  const dir = await tempDir('gpr-mtls-');
  const [one, two] = [await clientCa(dir, 'one'), await clientCa(dir, 'two')];
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const configPath = join(dir, 'config.json');
  const raw = (clientCaPath: string | undefined) => ({
    listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' },
    upstream: backend.url,
    rewrite: 'internal',
    tls: { dir: join(dir, 'certs'), ...(clientCaPath ? { clientCa: clientCaPath } : {}) },
    cache: { dir: null },
  });
  await writeFile(configPath, JSON.stringify(raw(one.ca)));
  const p = await startTestProxy(raw(one.ca), { configPath });
  const port = Number(new URL(p.server.url('https')).port);
  const serverCa = join(dir, 'certs', 'ca.pem');
  const expected = await (await fetch(`${p.url}${INFO}`)).text();
  expect(JSON.parse(expected)).toMatchObject({ Version: 'v1.0.0' });
  const refusedCount = async () => {
    const text = await p.server.metrics.registry.getSingleMetricAsString('gpr_tls_refused_total');
    return Number(/gpr_tls_refused_total\{reason="client_cert"\} (\d+)/.exec(text)?.[1] ?? 0);
  };

  for (const tlsMax of ['1.3', '1.2'] as const) {
    const served = await curl(port, serverCa, one, tlsMax);
    expect({ code: served.code, stderr: served.stderr }).toEqual({ code: 0, stderr: '' });
    expect(served.body).toBe(expected);
    // No certificate: TLS 1.3 gets the alert "certificate required", 1.2 a handshake failure.
    const none = await curl(port, serverCa, undefined, tlsMax);
    expect(none.code).not.toBe(0);
    expect(none.body).toBe('');
    expect(none.stderr).toMatch(tlsMax === '1.3' ? /certificate required/ : /handshake failure|alert/);
    const foreign = await curl(port, serverCa, two, tlsMax);
    expect(foreign.code).not.toBe(0);
    expect(foreign.body).toBe('');
  }
  await until(() => p.logs.filter((l) => l.reason === 'client_cert').length >= 2);
  expect(await refusedCount()).toBe(4);
  // Logged once per peer and problem, not once per handshake.
  const refusals = p.logs.filter((l) => l.msg === 'tls handshake refused' && l.reason === 'client_cert');
  expect(refusals.map((l) => `${l.peer as string} ${l.problem as string} ${l.err as string}`).sort()).toEqual([
    '127.0.0.1 UNABLE_TO_VERIFY_LEAF_SIGNATURE GPR_ERR_TLS_CLIENT_CERT_REFUSED',
    '127.0.0.1 missing GPR_ERR_TLS_CLIENT_CERT_REFUSED',
  ]);
  // Plain HTTP is not affected.
  expect((await fetch(`${p.url}${INFO}`)).status).toBe(200);

  // Reload with the other client CA: now `two` is served and `one` refused.
  await writeFile(configPath, JSON.stringify(raw(two.ca)));
  expect(await p.server.reload()).toMatchObject({ ok: true, generation: 2 });
  expect((await curl(port, serverCa, two, '1.3')).body).toBe(expected);
  expect((await curl(port, serverCa, one, '1.3')).code).not.toBe(0);
  expect(await refusedCount()).toBe(5);

  // A file that is no CA (a client leaf) fails the reload; `two` stays in force.
  await writeFile(configPath, JSON.stringify(raw(one.cert)));
  const failed = await p.server.reload();
  expect(failed.ok).toBe(false);
  expect(!failed.ok && (failed.error as Error & { code: string }).code).toBe('GPR_ERR_CA_INVALID');
  expect(!failed.ok && failed.error.message).toContain('is not a CA');
  expect((await curl(port, serverCa, two, '1.3')).body).toBe(expected);

  // Without tls.clientCa, clients without a certificate are served again.
  await writeFile(configPath, JSON.stringify(raw(undefined)));
  expect(await p.server.reload()).toMatchObject({ ok: true, generation: 3 });
  expect((await curl(port, serverCa, undefined, '1.3')).body).toBe(expected);
  expect(await refusedCount()).toBe(5);
});

test('with reload.watch, replacing the client CA file (a rotated Secret) reloads: the new CA is in force without a signal', { timeout: 60_000 }, async () => {
  const dir = await tempDir('gpr-mtls-watch-');
  const [one, two] = [await clientCa(dir, 'one'), await clientCa(dir, 'two')];
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const clientCaPath = join(dir, 'client-ca.pem');
  await copyFile(one.ca, clientCaPath);
  const configPath = join(dir, 'config.json');
  const raw = {
    listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' },
    upstream: backend.url,
    rewrite: 'internal',
    tls: { dir: join(dir, 'certs'), clientCa: clientCaPath },
    reload: { watch: true, debounceMs: 50, pollMs: 200 },
    cache: { dir: null },
  };
  await writeFile(configPath, JSON.stringify(raw));
  const p = await startTestProxy(raw, { configPath });
  const port = Number(new URL(p.server.url('https')).port);
  const serverCa = join(dir, 'certs', 'ca.pem');
  const expected = await (await fetch(`${p.url}${INFO}`)).text();
  expect((await curl(port, serverCa, one, '1.3')).body).toBe(expected);
  expect((await curl(port, serverCa, two, '1.3')).code).not.toBe(0);

  // The config file stays as it is; only the CA file it names is replaced (temp file + rename).
  await copyFile(two.ca, `${clientCaPath}.tmp`);
  await rename(`${clientCaPath}.tmp`, clientCaPath);
  await until(() => p.logs.some((l) => l.msg === 'config reloaded'), 5000);
  expect(p.logs.filter((l) => l.msg === 'config file changed')).toHaveLength(1);
  expect((await curl(port, serverCa, two, '1.3')).body).toBe(expected);
  expect((await curl(port, serverCa, one, '1.3')).code).not.toBe(0);
});
