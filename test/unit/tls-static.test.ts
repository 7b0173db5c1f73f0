// Tests of src/tls/static.ts: the bring-your-own leaf certificate checks and
// the self-signed localhost certificate, with real files in temp dirs and
// openssl as an independent verifier. Owns no server.
import { X509Certificate } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { isGprError } from '../../src/errors.js';
import { caPaths, initCa, loadCa } from '../../src/tls/ca.js';
import { createLeafMinter } from '../../src/tls/certs.js';
import { loadStaticCert, selfSignedLocalhost } from '../../src/tls/static.js';
import { tempDir } from '../helpers/temp.js';
import { openssl } from '../helpers/openssl.js';

const HOSTS = ['proxy.golang.org', 'sum.golang.org'];
const DAY_MS = 86_400_000;

async function expectGprError(promise: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGprError(err), `expected ${code}, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  for (const part of parts) expect((err as Error).message).toContain(part);
}

/** A leaf for `hosts` from a fresh CA, written as cert.pem / key.pem in a temp dir. */
async function byoLeaf(names: string[] = HOSTS): Promise<{ dir: string; certPath: string; keyPath: string; caCertPath: string; caKeyPath: string }> {
  const dir = await tempDir('gpr-tls-');
  await initCa({ dir, hosts: HOSTS });
  const ca = await loadCa(caPaths(dir));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  // One certificate for several names: openssl, since the minter makes one per name.
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${names[0]}`,
    '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`, '-keyout', keyPath, '-out', join(dir, 'req.csr')]);
  await openssl(['x509', '-req', '-in', join(dir, 'req.csr'), '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial',
    '-copy_extensions', 'copy', '-days', '10', '-sha256', '-out', certPath]);
  return { dir, certPath, keyPath, caCertPath: ca.certPath, caKeyPath: ca.keyPath };
}

test('a bring-your-own leaf loads and serves only the allowed names', async () => {
  const { certPath, keyPath } = await byoLeaf();
  const cert = await loadStaticCert({ certPath, keyPath, hosts: HOSTS });
  expect(cert.cert.subjectAltName).toBe('DNS:proxy.golang.org, DNS:sum.golang.org');
  expect(cert.certPem).toBe(await readFile(certPath, 'utf8'));
  const ctx = cert.secureContext('Proxy.Golang.Org.');
  expect(ctx).toBeDefined();
  expect(cert.secureContext('sum.golang.org')).toBe(ctx);
  expect(cert.secureContext('evil.example.com')).toBeUndefined();
});

test.each([
  {
    problem: 'a key that does not belong to it',
    setUp: async (f: Awaited<ReturnType<typeof byoLeaf>>) => writeFile(f.keyPath, await readFile(f.caKeyPath)),
    file: 'key.pem',
    message: 'does not belong',
  },
  {
    problem: 'a CA certificate',
    setUp: async (f: Awaited<ReturnType<typeof byoLeaf>>) => {
      await writeFile(f.certPath, await readFile(f.caCertPath));
      await writeFile(f.keyPath, await readFile(f.caKeyPath));
    },
    file: 'cert.pem',
    message: 'is a CA certificate',
  },
  {
    problem: 'garbage',
    setUp: (f: Awaited<ReturnType<typeof byoLeaf>>) => writeFile(f.certPath, 'garbage'),
    file: 'cert.pem',
    message: 'no PEM certificate',
  },
  {
    problem: 'a missing key file',
    setUp: (f: Awaited<ReturnType<typeof byoLeaf>>) => rm(f.keyPath),
    file: 'key.pem',
    message: 'ENOENT',
  },
])('loadStaticCert rejects $problem with GPR_ERR_CERT_INVALID naming the file', async ({ setUp, file, message }) => {
  const f = await byoLeaf();
  await setUp(f);
  await expectGprError(loadStaticCert({ certPath: f.certPath, keyPath: f.keyPath, hosts: HOSTS }), 'GPR_ERR_CERT_INVALID', join(f.dir, file), message);
});

test('loadStaticCert rejects an expired leaf and one whose SAN misses a host', async () => {
  const f = await byoLeaf(['proxy.golang.org']);
  await expectGprError(
    loadStaticCert({ certPath: f.certPath, keyPath: f.keyPath, hosts: ['proxy.golang.org'], now: () => Date.now() + 11 * DAY_MS }),
    'GPR_ERR_CERT_INVALID',
    f.certPath,
    'expired on',
  );
  await expectGprError(loadStaticCert({ certPath: f.certPath, keyPath: f.keyPath, hosts: HOSTS }), 'GPR_ERR_CERT_INVALID', f.certPath, 'sum.golang.org');
});

test('a minted leaf written to files also loads as a static certificate', async () => {
  const dir = await tempDir('gpr-tls-');
  await initCa({ dir, hosts: HOSTS });
  const pem = createLeafMinter({ ca: await loadCa(caPaths(dir)), hosts: HOSTS, leafValidityHours: 1 }).leafPem('sum.golang.org')!;
  await writeFile(join(dir, 'leaf.pem'), pem.cert);
  await writeFile(join(dir, 'leaf-key.pem'), pem.key);
  const cert = await loadStaticCert({ certPath: join(dir, 'leaf.pem'), keyPath: join(dir, 'leaf-key.pem'), hosts: ['sum.golang.org'] });
  expect(cert.secureContext('sum.golang.org')).toBeDefined();
});

test('selfSignedLocalhost makes a SHA-256 certificate for localhost, 127.0.0.1 and ::1 once, then reuses it', async () => {
  const dir = join(await tempDir('gpr-tls-'), 'certs');
  const first = await selfSignedLocalhost(dir);
  expect(first.created).toBe(true);
  expect(first.certPath).toBe(join(dir, 'localhost.pem'));
  expect((await stat(first.keyPath)).mode & 0o777).toBe(0o600);
  expect((await stat(dir)).mode & 0o777).toBe(0o700);

  const text = await openssl(['x509', '-text', '-noout', '-in', first.certPath]);
  expect(text).toMatch(/Signature Algorithm: (ecdsa-with-SHA256|sha256WithRSAEncryption)/);
  expect(text).toMatch(/DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1\n/);
  expect(await openssl(['verify', '-CAfile', first.certPath, first.certPath])).toContain(': OK');
  const cert = new X509Certificate(first.certPem);
  expect(cert.checkIP('::1')).toBe('::1');

  const second = await selfSignedLocalhost(dir);
  expect(second).toEqual({ ...first, created: false });

  // Near expiry (under 30 days left), or unusable: made again.
  const later = await selfSignedLocalhost(dir, { now: () => new Date(cert.validTo).getTime() - 29 * DAY_MS });
  expect(later.created).toBe(true);
  expect(later.certPem).not.toBe(first.certPem);
  await writeFile(later.keyPath, 'broken');
  expect((await selfSignedLocalhost(dir)).created).toBe(true);
});
