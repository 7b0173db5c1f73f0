/**
 * @module tls/certs
 * Owns: the leaf certificates served on the HTTPS listener: one per allowed
 * host name, minted on demand (or at start) with the loaded CA, cached as a
 * `tls.SecureContext`, and re-minted before it expires.
 * Must not: touch files, sockets or the environment (the CA comes in loaded,
 * time comes from `now`), or mint for a name outside tls.hosts.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { gprError } from '../errors.js';
import { assertCaPermits, buildLeafCertificate, CLOCK_SKEW_MS, normalizeDnsName, normalizeHosts, type LoadedCa } from './x509.js';

const HOUR_MS = 3_600_000;
/** Never re-mint more often than this, even when the CA is about to expire and clamps the leaves. */
const MIN_RENEW_AFTER_MS = 60_000;

/** Options of {@link createLeafMinter}. */
export interface LeafMinterOptions {
  /** The issuing CA; its name constraints must permit every host. */
  ca: LoadedCa;
  /** The allowlist: the only names that get a certificate (tls.hosts). */
  hosts: readonly string[];
  /** Lifetime of each leaf in hours (tls.leafValidityHours, default 168 there); capped at the CA's expiry. */
  leafValidityHours: number;
  /** Clock in ms since the epoch, for tests. Default `Date.now`. */
  now?: () => number;
  /** tls.clientCa's PEM: the CA(s) each context verifies client certificates with (mutual TLS). */
  clientCaPem?: string;
}

/** PEM of one minted leaf, for tests and diagnostics. */
export interface LeafPem {
  /** The leaf certificate, the only certificate served. */
  cert: string;
  /** The leaf's private key (PKCS#8). */
  key: string;
  /** The CA certificate that issued it: what a client must trust; not served. */
  chain: string;
}

/** Per-name certificates for the SNI callback of the HTTPS listener. */
export interface LeafMinter {
  /**
   * The context for a TLS server name, minting or renewing its leaf when
   * needed; undefined for a name outside the allowlist (compared
   * case-insensitively, one trailing dot ignored).
   */
  secureContext(name: string): SecureContext | undefined;
  /** Mints every allowed name now, so the first handshakes do not wait (about 1 ms each). */
  premint(): void;
  /** The PEM behind {@link LeafMinter.secureContext}; undefined for a name outside the allowlist. */
  leafPem(name: string): LeafPem | undefined;
  /** The normalized allowlist. */
  readonly hosts: readonly string[];
}

interface Minted {
  context: SecureContext;
  pem: LeafPem;
  renewAtMs: number;
}

/**
 * Makes the leaf minter. Throws GPR_ERR_CONFIG_INVALID for a bad host name or
 * validity, GPR_ERR_CA_INVALID when the CA's name constraints leave out a host.
 *
 * Each leaf: a fresh P-256 key (never the CA key), subject CN and SAN dNSName =
 * the name, EKU serverAuth, keyUsage digitalSignature, random 16-byte serial,
 * notBefore = now - 1 h, notAfter = now + leafValidityHours (not past the CA's
 * notAfter), authorityKeyIdentifier = the CA's key id, SHA-256 signature. A
 * leaf is replaced once 2/3 of its lifetime has passed, so a client never sees
 * one close to expiry.
 */
export function createLeafMinter(opts: LeafMinterOptions): LeafMinter {
  const { ca } = opts;
  const now = opts.now ?? Date.now;
  const hosts = normalizeHosts(opts.hosts);
  if (!(opts.leafValidityHours > 0) || !Number.isFinite(opts.leafValidityHours)) {
    throw gprError('GPR_ERR_CONFIG_INVALID', ['', `tls.leafValidityHours must be a positive number, got ${opts.leafValidityHours}`]);
  }
  assertCaPermits(ca, hosts);
  const allowed = new Set(hosts);
  const cache = new Map<string, Minted>();

  function mint(name: string, nowMs: number): Minted {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const notAfterMs = Math.min(nowMs + opts.leafValidityHours * HOUR_MS, ca.notAfter.getTime());
    const cert = buildLeafCertificate({
      issuer: ca.issuer,
      commonName: name,
      dnsNames: [name],
      publicKey,
      notBefore: new Date(nowMs - CLOCK_SKEW_MS),
      notAfter: new Date(notAfterMs),
    });
    const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    // Only the leaf is served, not the CA: clients must already hold the CA as
    // a trust anchor (a CA they are sent cannot make them trust anything), and
    // RFC 8446 4.4.2 lets the anchor be left out; it saves bytes on every handshake.
    // The client CA goes into every per-name context: after the SNI callback,
    // OpenSSL verifies the client's certificate with the chosen context's store.
    const context = createSecureContext({ cert: cert.pem, key, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ...(opts.clientCaPem ? { ca: opts.clientCaPem } : {}) });
    return {
      context,
      pem: { cert: cert.pem, key, chain: ca.certPem },
      renewAtMs: nowMs + Math.max(((notAfterMs - nowMs) * 2) / 3, MIN_RENEW_AFTER_MS),
    };
  }

  function current(rawName: string): Minted | undefined {
    const name = normalizeDnsName(rawName);
    if (name === undefined || !allowed.has(name)) return undefined;
    const nowMs = now();
    let entry = cache.get(name);
    if (entry === undefined || nowMs >= entry.renewAtMs) {
      entry = mint(name, nowMs);
      cache.set(name, entry);
    }
    return entry;
  }

  return {
    hosts,
    secureContext(name) {
      return current(name)?.context;
    },
    premint() {
      for (const host of hosts) current(host);
    },
    leafPem(name) {
      const pem = current(name)?.pem;
      return pem === undefined ? undefined : { ...pem };
    },
  };
}
