/**
 * @module tls/ca
 * Owns: the CA on disk: creating the project's name-constrained CA
 * (`ca.pem`, `ca-key.pem` with mode 0600, in a 0700 directory), loading and
 * validating it or a bring-your-own CA, its status and its PEM for export.
 * Must not: mint leaf certificates (certs.ts), encode ASN.1 (x509.ts), log, or
 * read config or the environment; paths and host names are passed in.
 */
import { generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gprError, type GprError } from '../errors.js';
import { ensurePrivateDir, fsErrorText, readIfExists, writeFileAtomic } from './files.js';
import {
  assertCaPermits,
  buildCaCertificate,
  CLOCK_SKEW_MS,
  inspectCertificate,
  isSupportedSigningKey,
  keyIdentifier,
  normalizeHosts,
  parseFirstCertificate,
  parsePrivateKey,
  type LoadedCa,
} from './x509.js';

export type { LoadedCa } from './x509.js';

/** File name of the CA certificate inside the CA directory. */
export const CA_CERT_FILE = 'ca.pem';
/** File name of the CA private key inside the CA directory (mode 0600). */
export const CA_KEY_FILE = 'ca-key.pem';

const DAY_MS = 86_400_000;

/** The paths of `ca.pem` and `ca-key.pem` in `dir`. */
export function caPaths(dir: string): { certPath: string; keyPath: string } {
  return { certPath: join(dir, CA_CERT_FILE), keyPath: join(dir, CA_KEY_FILE) };
}

/** Options of {@link initCa}. */
export interface InitCaOptions {
  /** Directory for `ca.pem` and `ca-key.pem`; created with mode 0700 when missing. */
  dir: string;
  /** The only DNS names (and their subdomains) the CA may ever sign for: its name constraints. */
  hosts: readonly string[];
  /** Replace an existing CA. Default false: GPR_ERR_CA_EXISTS. */
  force?: boolean;
  /** Lifetime of the CA certificate in days. Default 3650. */
  validityDays?: number;
  /** Clock in ms since the epoch, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * Creates a CA in `dir`: a P-256 key (node:crypto) written atomically with mode
 * 0600, and a self-signed certificate (SHA-256, CA:TRUE pathlen:0, keyCertSign
 * + cRLSign, name constraints permitting only `hosts`, every IP excluded).
 * Throws GPR_ERR_CA_EXISTS when either file exists and `force` is not set.
 */
export async function initCa(opts: InitCaOptions): Promise<{ certPath: string; keyPath: string; fingerprint256: string }> {
  const hosts = normalizeHosts(opts.hosts);
  const validityDays = opts.validityDays ?? 3650;
  if (!(validityDays > 0) || !Number.isFinite(validityDays)) {
    throw gprError('GPR_ERR_CONFIG_INVALID', ['', `CA validityDays must be a positive number, got ${validityDays}`]);
  }
  const nowMs = (opts.now ?? Date.now)();
  const { certPath, keyPath } = caPaths(opts.dir);
  await ensurePrivateDir(opts.dir);
  if (opts.force !== true && ((await readIfExists(certPath)) !== undefined || (await readIfExists(keyPath)) !== undefined)) {
    throw gprError('GPR_ERR_CA_EXISTS', [opts.dir]);
  }

  // P-256: keygen 0.03 ms against ~120 ms for RSA-2048, and Go (and every TLS 1.2+ client) accepts it.
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = buildCaCertificate({
    subject: {
      organization: 'go-proxy-rewriter',
      // A random suffix tells CAs apart in trust stores after a `certs init --force`.
      commonName: `go-proxy-rewriter CA ${randomBytes(4).toString('hex')}`,
    },
    publicKey,
    privateKey,
    permittedDnsNames: hosts,
    notBefore: new Date(nowMs - CLOCK_SKEW_MS),
    notAfter: new Date(nowMs + validityDays * DAY_MS),
  });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  // Without force, link() refuses to replace a file another process created meanwhile.
  const exclusive = opts.force !== true;
  try {
    await writeFileAtomic(keyPath, keyPem, { mode: 0o600, exclusive });
    await writeFileAtomic(certPath, cert.pem, { mode: 0o644, exclusive });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw gprError('GPR_ERR_CA_EXISTS', [opts.dir], err);
    throw err;
  }
  return { certPath, keyPath, fingerprint256: new X509Certificate(cert.der).fingerprint256 };
}

function caInvalid(path: string, problem: string, cause?: unknown): GprError {
  return gprError('GPR_ERR_CA_INVALID', [path, problem], cause);
}

async function readCaFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw gprError('GPR_ERR_CA_MISSING', [path], err);
    throw caInvalid(path, `cannot read it: ${fsErrorText(err)}`, err);
  }
}

/** Options of {@link loadCa}. */
export interface LoadCaOptions {
  certPath: string;
  keyPath: string;
  /** Clock in ms since the epoch, for tests. Default `Date.now`. */
  now?: () => number;
}

/**
 * Loads a CA certificate and key (the project's or a bring-your-own one; RSA or
 * ECDSA) and checks that the certificate is a CA allowed to sign certificates,
 * is valid now, and that the key belongs to it. Throws GPR_ERR_CA_MISSING when
 * a file does not exist and GPR_ERR_CA_INVALID naming the file and the problem
 * otherwise.
 */
export async function loadCa(opts: LoadCaOptions): Promise<LoadedCa> {
  const { certPath, keyPath } = opts;
  const [certText, keyText] = [await readCaFile(certPath), await readCaFile(keyPath)];

  let cert: X509Certificate;
  try {
    cert = parseFirstCertificate(certText);
  } catch (err) {
    throw caInvalid(certPath, (err as Error).message, err);
  }
  if (!cert.ca) throw caInvalid(certPath, 'it is not a CA certificate (basicConstraints CA:TRUE is missing)');
  let fields;
  try {
    fields = inspectCertificate(cert.raw);
  } catch (err) {
    throw caInvalid(certPath, `its extensions do not parse: ${(err as Error).message}`, err);
  }
  if (fields.keyCertSign === false) throw caInvalid(certPath, 'its keyUsage does not include keyCertSign');

  const nowMs = (opts.now ?? Date.now)();
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (nowMs >= notAfter.getTime()) throw caInvalid(certPath, `it expired on ${notAfter.toISOString()}`);
  if (nowMs < notBefore.getTime()) throw caInvalid(certPath, `it is not valid before ${notBefore.toISOString()}`);

  let privateKey: KeyObject;
  try {
    privateKey = parsePrivateKey(keyText);
  } catch (err) {
    throw caInvalid(keyPath, (err as Error).message, err);
  }
  if (!cert.checkPrivateKey(privateKey)) throw caInvalid(keyPath, `the key does not belong to the certificate in ${certPath}`);
  if (!isSupportedSigningKey(privateKey)) {
    throw caInvalid(keyPath, `${String(privateKey.asymmetricKeyType)} keys cannot sign here; use an RSA or ECDSA CA key`);
  }

  return Object.freeze({
    certPath,
    keyPath,
    certPem: cert.toString(),
    cert,
    issuer: {
      subjectDer: fields.subjectDer,
      // A CA without subjectKeyIdentifier: use what RFC 5280 method 1 would have put there.
      keyIdentifier: fields.subjectKeyIdentifier ?? keyIdentifier(cert.publicKey),
      privateKey,
    },
    nameConstraints: fields.nameConstraints,
    notBefore,
    notAfter,
    fingerprint256: cert.fingerprint256,
  });
}

/**
 * The embedded default: loads the CA in `dir`, or creates it there first when
 * neither file exists (first start). Throws GPR_ERR_CA_INVALID when only one of
 * the two files exists (a lone key is never overwritten) or when the CA does
 * not permit every host.
 */
export async function loadOrCreateCa(
  dir: string,
  hosts: readonly string[],
  opts: { now?: () => number } = {},
): Promise<{ ca: LoadedCa; created: boolean }> {
  const names = normalizeHosts(hosts);
  const { certPath, keyPath } = caPaths(dir);
  const [certText, keyText] = [await readIfExists(certPath), await readIfExists(keyPath)];
  let created = false;
  if (certText === undefined && keyText === undefined) {
    try {
      await initCa({ dir, hosts: names, ...opts });
      created = true;
    } catch (err) {
      // Another process created it between the check and the write: load theirs.
      if ((err as GprError).code !== 'GPR_ERR_CA_EXISTS') throw err;
    }
  } else if (certText === undefined || keyText === undefined) {
    const missing = certText === undefined ? CA_CERT_FILE : CA_KEY_FILE;
    const present = certText === undefined ? keyPath : certPath;
    throw caInvalid(present, `${missing} is missing beside it; restore it, or replace both with \`go-proxy-rewriter certs init --force\``);
  }
  const ca = await loadCa({ certPath, keyPath, ...opts });
  assertCaPermits(ca, names);
  return { ca, created };
}

/** What `certs status` shows about a CA. */
export interface CaStatus {
  /** SHA-256 fingerprint, colon-separated upper-case hex. */
  fingerprint256: string;
  notAfter: Date;
  /** Permitted DNS subtrees of the name constraints; empty when the CA has none (it may sign for any name). */
  permittedNames: string[];
}

/** The fingerprint, expiry and permitted names of a loaded CA. */
export function caStatus(ca: LoadedCa): CaStatus {
  return {
    fingerprint256: ca.fingerprint256,
    notAfter: ca.notAfter,
    permittedNames: [...(ca.nameConstraints?.permittedDns ?? [])],
  };
}

/**
 * The PEM of the CA certificate in `dir`, for clients to trust (never the key).
 * Throws GPR_ERR_CA_MISSING when there is none, GPR_ERR_CA_INVALID when it does not parse.
 */
export async function exportCaPem(dir: string): Promise<string> {
  const { certPath } = caPaths(dir);
  const text = await readIfExists(certPath).catch((err: unknown) => {
    throw caInvalid(certPath, `cannot read it: ${fsErrorText(err)}`, err);
  });
  if (text === undefined) throw gprError('GPR_ERR_CA_MISSING', [dir]);
  try {
    return parseFirstCertificate(text).toString();
  } catch (err) {
    throw caInvalid(certPath, (err as Error).message, err);
  }
}
