// Tests of the CA (src/tls/ca.ts) and the leaf minter (src/tls/certs.ts) with
// real keys, real files in temp dirs and the real openssl command as an
// independent verifier. Owns no server: handshakes are in
// test/integration/tls-handshake.test.ts.
import { X509Certificate } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { isGprError } from '../../src/errors.js';
import { caPaths, caStatus, exportCaPem, initCa, loadCa, loadOrCreateCa, type LoadedCa } from '../../src/tls/ca.js';
import { createLeafMinter } from '../../src/tls/certs.js';
import { openssl } from '../helpers/openssl.js';
import { tempDir } from '../helpers/temp.js';

const HOSTS = ['proxy.golang.org', 'sum.golang.org'];
const HOUR_MS = 3_600_000;

/** Like {@link openssl} but resolves with the exit code too, for commands expected to fail. */
async function opensslStatus(args: string[]): Promise<{ code: number; output: string }> {
  try {
    return { code: 0, output: await openssl(args) };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function newCa(hosts = HOSTS): Promise<{ dir: string; ca: LoadedCa }> {
  const dir = await tempDir('gpr-tls-');
  await initCa({ dir, hosts });
  return { dir, ca: await loadCa(caPaths(dir)) };
}

/** Asserts that `promise` rejects with our error `code` and a message containing each of `parts`. */
async function expectGprError(promise: Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGprError(err), `expected ${code}, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  for (const part of parts) expect((err as Error).message).toContain(part);
}

test('a minted leaf has the SAN, the CA as issuer, a fresh key and a SHA-256 signature', async () => {
  const { dir, ca } = await newCa();
  const t0 = Date.UTC(2030, 0, 1);
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168, now: () => t0 });
  const pem = minter.leafPem('proxy.golang.org');
  expect(pem).toBeDefined();
  const leaf = new X509Certificate(pem!.cert);

  expect(leaf.subjectAltName).toBe('DNS:proxy.golang.org');
  expect(leaf.subject).toBe('CN=proxy.golang.org');
  expect(leaf.issuer).toBe(ca.cert.subject);
  expect(leaf.ca).toBe(false);
  expect(leaf.checkIssued(ca.cert)).toBe(true);
  expect(leaf.verify(ca.cert.publicKey)).toBe(true);
  expect(leaf.publicKey.equals(ca.cert.publicKey)).toBe(false);
  expect(leaf.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
  expect(new Date(leaf.validFrom).getTime()).toBe(t0 - HOUR_MS);
  expect(new Date(leaf.validTo).getTime()).toBe(t0 + 168 * HOUR_MS);
  expect(pem!.chain).toBe(ca.certPem);

  const leafPath = join(dir, 'leaf.pem');
  await writeFile(leafPath, pem!.cert);
  const text = await openssl(['x509', '-text', '-noout', '-in', leafPath]);
  expect(text).toMatch(/Signature Algorithm: (ecdsa-with-SHA256|sha256WithRSAEncryption)/);
  expect(text).not.toMatch(/sha1/i);
  expect(text).toMatch(/X509v3 Subject Alternative Name: *\n *DNS:proxy\.golang\.org\n/);
  expect(text).toMatch(/X509v3 Extended Key Usage: *\n *TLS Web Server Authentication\n/);
  expect(text).toMatch(/X509v3 Key Usage: critical\n *Digital Signature\n/);
  expect(text).toContain('X509v3 Authority Key Identifier');
  expect(text).toMatch(/X509v3 Basic Constraints: critical\n *CA:FALSE/);
});

test('the CA has CA:TRUE pathlen:0, keyCertSign, a key id and critical name constraints for the hosts only', async () => {
  const { ca } = await newCa();
  const text = await openssl(['x509', '-text', '-noout', '-in', ca.certPath]);
  expect(text).toMatch(/Signature Algorithm: (ecdsa-with-SHA256|sha256WithRSAEncryption)/);
  expect(text).toMatch(/X509v3 Basic Constraints: critical\n *CA:TRUE, pathlen:0\n/);
  expect(text).toMatch(/X509v3 Key Usage: critical\n *Certificate Sign, CRL Sign\n/);
  expect(text).toContain('X509v3 Subject Key Identifier');
  const nc = /X509v3 Name Constraints: critical\n *Permitted:\n((?: {6,}\S.*\n)+) *Excluded:\n((?: {6,}\S.*\n)+)/.exec(text);
  expect(nc, text).not.toBeNull();
  expect(nc![1]!.trim().split(/\s+/)).toEqual(['DNS:proxy.golang.org', 'DNS:sum.golang.org']);
  expect(nc![2]).toContain('IP:0.0.0.0/0.0.0.0');
  expect(caStatus(ca)).toEqual({ fingerprint256: ca.cert.fingerprint256, notAfter: ca.notAfter, permittedNames: HOSTS });
  const days = (ca.notAfter.getTime() - Date.now()) / 86_400_000;
  expect(days).toBeGreaterThan(3649);
  expect(days).toBeLessThanOrEqual(3650);
});

test('openssl verify accepts a minted leaf against ca.pem, and rejects a leaf outside the name constraints', async () => {
  const { dir, ca } = await newCa();
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168 });
  const leafPath = join(dir, 'leaf.pem');
  await writeFile(leafPath, minter.leafPem('sum.golang.org')!.cert);
  expect(await openssl(['verify', '-CAfile', ca.certPath, leafPath])).toContain(`${leafPath}: OK`);

  // A leaf the CA key signs for another name, around the minter: the constraint must stop it.
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=evil.example.com',
    '-addext', 'subjectAltName=DNS:evil.example.com', '-keyout', join(dir, 'evil-key.pem'), '-out', join(dir, 'evil.csr')]);
  await openssl(['x509', '-req', '-in', join(dir, 'evil.csr'), '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial',
    '-copy_extensions', 'copy', '-days', '1', '-sha256', '-out', join(dir, 'evil.pem')]);
  const evil = await opensslStatus(['verify', '-CAfile', ca.certPath, join(dir, 'evil.pem')]);
  expect(evil.code).not.toBe(0);
  expect(evil.output).toMatch(/permitted subtree violation/);
});

test.each([
  ['evil.example.com'],
  ['golang.org'],
  ['x.proxy.golang.org'],
  [''],
  ['127.0.0.1'],
])('no certificate for %j, outside the allowlist', async (name) => {
  const { ca } = await newCa();
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168 });
  expect(minter.secureContext(name)).toBeUndefined();
  expect(minter.leafPem(name)).toBeUndefined();
});

test('names compare case-insensitively with one trailing dot ignored, and each is minted once', async () => {
  const { ca } = await newCa();
  const minter = createLeafMinter({ ca, hosts: ['Proxy.Golang.org.'], leafValidityHours: 168 });
  expect(minter.hosts).toEqual(['proxy.golang.org']);
  const ctx = minter.secureContext('proxy.golang.org');
  expect(ctx).toBeDefined();
  expect(minter.secureContext('PROXY.golang.ORG.')).toBe(ctx);
  expect(minter.secureContext('proxy.golang.org..')).toBeUndefined();
});

test('premint mints every host; a leaf is re-minted once 2/3 of its validity has passed', async () => {
  const { ca } = await newCa();
  let nowMs = Date.UTC(2030, 0, 1);
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168, now: () => nowMs });
  minter.premint();
  const serial = (): string => new X509Certificate(minter.leafPem('proxy.golang.org')!.cert).serialNumber;
  const first = serial();
  const ctx = minter.secureContext('proxy.golang.org');

  nowMs += 0.66 * 168 * HOUR_MS;
  expect(serial()).toBe(first);
  expect(minter.secureContext('proxy.golang.org')).toBe(ctx);

  nowMs += 0.02 * 168 * HOUR_MS; // 68 % of the validity: past 2/3
  const second = serial();
  expect(second).not.toBe(first);
  expect(minter.secureContext('proxy.golang.org')).not.toBe(ctx);
  expect(new Date(new X509Certificate(minter.leafPem('proxy.golang.org')!.cert).validTo).getTime()).toBe(nowMs + 168 * HOUR_MS);
});

test('a leaf never outlives its CA', async () => {
  const { ca } = await newCa();
  const nearEnd = ca.notAfter.getTime() - 24 * HOUR_MS;
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168, now: () => nearEnd });
  const leaf = new X509Certificate(minter.leafPem('proxy.golang.org')!.cert);
  expect(new Date(leaf.validTo).getTime()).toBe(ca.notAfter.getTime());
});

test('the minter refuses hosts the CA may not sign for, and bad options', async () => {
  const { ca } = await newCa(['proxy.golang.org']);
  expect(() => createLeafMinter({ ca, hosts: ['proxy.golang.org', 'goproxy.cn'], leafValidityHours: 168 })).toThrow(
    expect.objectContaining({ code: 'GPR_ERR_CA_INVALID', message: expect.stringContaining('goproxy.cn') }),
  );
  expect(() => createLeafMinter({ ca, hosts: ['proxy.golang.org'], leafValidityHours: 0 })).toThrow(
    expect.objectContaining({ code: 'GPR_ERR_CONFIG_INVALID', message: expect.stringContaining('leafValidityHours') }),
  );
  expect(() => createLeafMinter({ ca, hosts: ['*.golang.org'], leafValidityHours: 1 })).toThrow(
    expect.objectContaining({ code: 'GPR_ERR_CONFIG_INVALID', message: expect.stringContaining('tls.hosts[0]') }),
  );
});

test('initCa writes the key with mode 0600 in a 0700 directory and refuses to overwrite without force', async () => {
  const parent = await tempDir('gpr-tls-');
  const dir = join(parent, 'new', 'ca');
  const first = await initCa({ dir, hosts: HOSTS });
  expect(first).toEqual({ certPath: join(dir, 'ca.pem'), keyPath: join(dir, 'ca-key.pem'), fingerprint256: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/) });
  expect((await stat(first.keyPath)).mode & 0o777).toBe(0o600);
  expect((await stat(dir)).mode & 0o777).toBe(0o700);
  const keyBefore = await readFile(first.keyPath, 'utf8');

  await expectGprError(initCa({ dir, hosts: HOSTS }), 'GPR_ERR_CA_EXISTS', dir);
  expect(await readFile(first.keyPath, 'utf8')).toBe(keyBefore);

  const second = await initCa({ dir, hosts: HOSTS, force: true });
  expect(second.fingerprint256).not.toBe(first.fingerprint256);
  expect((await stat(second.keyPath)).mode & 0o777).toBe(0o600);
  expect((await loadCa(second)).fingerprint256).toBe(second.fingerprint256);
});

test('initCa refuses when only the key is left', async () => {
  const { dir } = await newCa();
  await rm(join(dir, 'ca.pem'));
  await expectGprError(initCa({ dir, hosts: HOSTS }), 'GPR_ERR_CA_EXISTS', dir);
  await expectGprError(loadOrCreateCa(dir, HOSTS), 'GPR_ERR_CA_INVALID', join(dir, 'ca-key.pem'), 'ca.pem is missing');
});

test.each([
  {
    problem: 'a certificate that is not a CA',
    setUp: async (dir: string, ca: LoadedCa) => {
      const leaf = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 1 }).leafPem('proxy.golang.org')!;
      await writeFile(join(dir, 'ca.pem'), leaf.cert);
      await writeFile(join(dir, 'ca-key.pem'), leaf.key);
    },
    file: 'ca.pem',
    message: 'not a CA certificate',
  },
  {
    problem: 'a key of another CA',
    setUp: async (dir: string) => {
      const other = await tempDir('gpr-tls-');
      await initCa({ dir: other, hosts: HOSTS });
      await writeFile(join(dir, 'ca-key.pem'), await readFile(join(other, 'ca-key.pem')));
    },
    file: 'ca-key.pem',
    message: 'does not belong to the certificate',
  },
  {
    problem: 'garbage instead of the certificate',
    setUp: (dir: string) => writeFile(join(dir, 'ca.pem'), 'not a certificate\n'),
    file: 'ca.pem',
    message: 'no PEM certificate',
  },
  {
    problem: 'a PEM block that is not DER',
    setUp: (dir: string) => writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
    file: 'ca.pem',
    message: 'does not parse',
  },
  {
    problem: 'garbage instead of the key',
    setUp: (dir: string) => writeFile(join(dir, 'ca-key.pem'), 'nope'),
    file: 'ca-key.pem',
    message: 'no PEM private key',
  },
])('loadCa rejects $problem with GPR_ERR_CA_INVALID naming the file', async ({ setUp, file, message }) => {
  const { dir, ca } = await newCa();
  await setUp(dir, ca);
  await expectGprError(loadCa(caPaths(dir)), 'GPR_ERR_CA_INVALID', join(dir, file), message);
});

test('loadCa rejects an expired or not yet valid CA, and a missing one with GPR_ERR_CA_MISSING', async () => {
  const { dir, ca } = await newCa();
  await expectGprError(loadCa({ ...caPaths(dir), now: () => ca.notAfter.getTime() + 1 }), 'GPR_ERR_CA_INVALID', join(dir, 'ca.pem'), 'expired on');
  await expectGprError(loadCa({ ...caPaths(dir), now: () => ca.notBefore.getTime() - 1 }), 'GPR_ERR_CA_INVALID', 'not valid before');
  const empty = await tempDir('gpr-tls-');
  await expectGprError(loadCa(caPaths(empty)), 'GPR_ERR_CA_MISSING', join(empty, 'ca.pem'));
  await expectGprError(exportCaPem(empty), 'GPR_ERR_CA_MISSING', empty);
});

test('loadOrCreateCa creates the CA on first start and loads the same one after', async () => {
  const dir = join(await tempDir('gpr-tls-'), 'certs');
  const first = await loadOrCreateCa(dir, HOSTS);
  expect(first.created).toBe(true);
  const second = await loadOrCreateCa(dir, HOSTS);
  expect(second.created).toBe(false);
  expect(second.ca.fingerprint256).toBe(first.ca.fingerprint256);
  expect(await exportCaPem(dir)).toBe(first.ca.certPem);
  expect(first.ca.certPem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
  // A host list the existing CA does not cover is an error, not a silent new CA.
  await expectGprError(loadOrCreateCa(dir, [...HOSTS, 'goproxy.io']), 'GPR_ERR_CA_INVALID', join(dir, 'ca.pem'), 'goproxy.io', 'certs init --force');
});

test('a bring-your-own RSA CA made by openssl req -x509 loads and signs (sha256WithRSAEncryption)', async () => {
  const dir = await tempDir('gpr-tls-');
  const certPath = join(dir, 'byo.pem');
  const keyPath = join(dir, 'byo-key.pem');
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '30', '-subj', '/O=Example Corp/CN=Example Root',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', keyPath, '-out', certPath]);
  const ca = await loadCa({ certPath, keyPath });
  expect(caStatus(ca).permittedNames).toEqual([]);
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 24 });
  const pem = minter.leafPem('proxy.golang.org')!;
  const leaf = new X509Certificate(pem.cert);
  expect(leaf.checkIssued(ca.cert)).toBe(true);
  expect(leaf.verify(ca.cert.publicKey)).toBe(true);
  expect(leaf.issuer).toBe('O=Example Corp\nCN=Example Root');
  const leafPath = join(dir, 'leaf.pem');
  await writeFile(leafPath, pem.cert);
  expect(await openssl(['x509', '-text', '-noout', '-in', leafPath])).toContain('Signature Algorithm: sha256WithRSAEncryption');
  expect(await openssl(['verify', '-CAfile', certPath, leafPath])).toContain(`${leafPath}: OK`);
});

test('a bring-your-own CA with an encrypted key is refused with a hint', async () => {
  const dir = await tempDir('gpr-tls-');
  const certPath = join(dir, 'byo.pem');
  const keyPath = join(dir, 'byo-key.pem');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-passout', 'pass:secret', '-days', '30',
    '-subj', '/CN=Encrypted Root', '-keyout', keyPath, '-out', certPath]);
  await expectGprError(loadCa({ certPath, keyPath }), 'GPR_ERR_CA_INVALID', keyPath, 'encrypted');
});
