/**
 * @module tls/static
 * Owns: certificates that are not minted per name: a bring-your-own leaf
 * (tls.cert / tls.key) loaded and checked, and the self-signed `localhost`
 * certificate of the embedded default HTTPS listener, made once and reused.
 * Must not: use or create the CA (ca.ts), log, or read config or the environment.
 */
import { generateKeyPairSync, type X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { gprError, type GprError } from '../errors.js';
import { ensurePrivateDir, fsErrorText, readIfExists, writeFileAtomic } from './files.js';
import { buildLeafCertificate, CLOCK_SKEW_MS, normalizeDnsName, normalizeHosts, parseFirstCertificate, parsePrivateKey } from './x509.js';

const DAY_MS = 86_400_000;

function certInvalid(path: string, problem: string, cause?: unknown): GprError {
  return gprError('GPR_ERR_CERT_INVALID', [path, problem], cause);
}

/** A bring-your-own leaf certificate, checked and ready to serve. */
export interface StaticCert {
  /** The certificate file as given (leaf first, then any intermediates: all are served). */
  certPem: string;
  keyPem: string;
  /** The leaf (first certificate of the file). */
  cert: X509Certificate;
  notAfter: Date;
  /** SHA-256 fingerprint of the leaf, colon-separated upper-case hex. */
  fingerprint256: string;
  /**
   * The one context for every allowed name; undefined for a name outside the
   * allowlist (case-insensitive, one trailing dot ignored), as the minter does.
   */
  secureContext(name: string): SecureContext | undefined;
}

/** Options of {@link loadStaticCert}. */
export interface LoadStaticCertOptions {
  certPath: string;
  keyPath: string;
  /** tls.hosts: the certificate's SAN must cover each (wildcards count). */
  hosts: readonly string[];
  /** Clock in ms since the epoch, for tests. Default `Date.now`. */
  now?: () => number;
  /** tls.clientCa's PEM: the CA(s) the context verifies client certificates with (mutual TLS). */
  clientCaPem?: string;
}

async function readCertFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw certInvalid(path, `cannot read it: ${fsErrorText(err)}`, err);
  }
}

/**
 * Loads a bring-your-own leaf certificate and key and checks that the key
 * belongs to the first certificate, that it is valid now, that it is not a CA,
 * and that its SAN covers every host (Go ignores the CN). Throws
 * GPR_ERR_CERT_INVALID naming the file and the problem.
 */
export async function loadStaticCert(opts: LoadStaticCertOptions): Promise<StaticCert> {
  const { certPath, keyPath } = opts;
  const hosts = normalizeHosts(opts.hosts);
  const [certPem, keyPem] = [await readCertFile(certPath), await readCertFile(keyPath)];
  let cert: X509Certificate;
  try {
    cert = parseFirstCertificate(certPem);
  } catch (err) {
    throw certInvalid(certPath, (err as Error).message, err);
  }
  if (cert.ca) throw certInvalid(certPath, 'it is a CA certificate; give the server (leaf) certificate, or the CA as tls.ca');
  const nowMs = (opts.now ?? Date.now)();
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (nowMs >= notAfter.getTime()) throw certInvalid(certPath, `it expired on ${notAfter.toISOString()}`);
  if (nowMs < notBefore.getTime()) throw certInvalid(certPath, `it is not valid before ${notBefore.toISOString()}`);
  const uncovered = hosts.filter((host) => cert.checkHost(host, { subject: 'never' }) === undefined);
  if (uncovered.length > 0) {
    throw certInvalid(certPath, `its subjectAltName (${cert.subjectAltName ?? 'none'}) does not cover tls.hosts ${uncovered.join(', ')}`);
  }
  try {
    if (!cert.checkPrivateKey(parsePrivateKey(keyPem))) throw new Error(`the key does not belong to the certificate in ${certPath}`);
  } catch (err) {
    throw certInvalid(keyPath, (err as Error).message, err);
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ...(opts.clientCaPem ? { ca: opts.clientCaPem } : {}) });
  } catch (err) {
    throw certInvalid(certPath, `TLS refuses it: ${(err as Error).message}`, err);
  }
  const allowed = new Set(hosts);
  return {
    certPem,
    keyPem,
    cert,
    notAfter,
    fingerprint256: cert.fingerprint256,
    secureContext(name) {
      const n = normalizeDnsName(name);
      return n !== undefined && allowed.has(n) ? context : undefined;
    },
  };
}

/** File name of the self-signed certificate of {@link selfSignedLocalhost}. */
export const LOCALHOST_CERT_FILE = 'localhost.pem';
/** File name of its private key (mode 0600). */
export const LOCALHOST_KEY_FILE = 'localhost-key.pem';

const LOCALHOST_DNS = ['localhost'];
const LOCALHOST_IPS = ['127.0.0.1', '::1'];

/** Options of {@link selfSignedLocalhost}. */
export interface SelfSignedOptions {
  /** Lifetime of a new certificate in days. Default 825 (the longest Apple clients accept). */
  validityDays?: number;
  /** Replace the certificate when fewer days than this remain. Default 30. */
  renewBeforeDays?: number;
  /** Clock in ms since the epoch, for tests. Default `Date.now`. */
  now?: () => number;
}

/** The self-signed localhost certificate: paths, PEM, and whether this call made it. */
export interface SelfSignedCert {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
  /** True when this call generated it (none, unusable or near expiry), false when reused. */
  created: boolean;
}

function reusable(certPem: string, keyPem: string, renewAtOrAfterMs: number): boolean {
  try {
    const cert = parseFirstCertificate(certPem);
    return (
      cert.checkPrivateKey(parsePrivateKey(keyPem)) &&
      new Date(cert.validTo).getTime() > renewAtOrAfterMs &&
      new Date(cert.validFrom).getTime() <= renewAtOrAfterMs &&
      LOCALHOST_DNS.every((name) => cert.checkHost(name, { subject: 'never' }) !== undefined) &&
      LOCALHOST_IPS.every((ip) => cert.checkIP(ip) !== undefined)
    );
  } catch {
    return false;
  }
}

/**
 * The certificate of the embedded default HTTPS listener: self-signed for
 * `localhost`, `127.0.0.1` and `::1` (P-256, SHA-256), kept in `dir` as
 * `localhost.pem` and `localhost-key.pem` (mode 0600; `dir` is created with
 * 0700). Reused while it parses, matches its key, names all three and has more
 * than `renewBeforeDays` left; otherwise (re)generated.
 */
export async function selfSignedLocalhost(dir: string, opts: SelfSignedOptions = {}): Promise<SelfSignedCert> {
  const nowMs = (opts.now ?? Date.now)();
  const validityDays = opts.validityDays ?? 825;
  const renewBeforeDays = opts.renewBeforeDays ?? 30;
  const certPath = join(dir, LOCALHOST_CERT_FILE);
  const keyPath = join(dir, LOCALHOST_KEY_FILE);
  await ensurePrivateDir(dir);
  const [oldCert, oldKey] = [await readIfExists(certPath), await readIfExists(keyPath)];
  if (oldCert !== undefined && oldKey !== undefined && reusable(oldCert, oldKey, nowMs + renewBeforeDays * DAY_MS)) {
    return { certPath, keyPath, certPem: oldCert, keyPem: oldKey, created: false };
  }
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = buildLeafCertificate({
    commonName: 'localhost',
    dnsNames: LOCALHOST_DNS,
    ipAddresses: LOCALHOST_IPS,
    publicKey,
    privateKey,
    notBefore: new Date(nowMs - CLOCK_SKEW_MS),
    notAfter: new Date(nowMs + validityDays * DAY_MS),
  });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  // Key first: a reader that sees the new certificate finds its key in place.
  await writeFileAtomic(keyPath, keyPem, { mode: 0o600 });
  await writeFileAtomic(certPath, cert.pem, { mode: 0o644 });
  return { certPath, keyPath, certPem: cert.pem, keyPem, created: true };
}
