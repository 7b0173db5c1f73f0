/**
 * @module tls/material
 * What the HTTPS listener serves for one runtime, built from `config.tls`:
 * minted leaves from the CA (the project's in `tls.dir`, created on first
 * start, or a bring-your-own one), or a static leaf; plus the self-signed
 * `localhost` certificate of the embedded default.
 * Must not: decide names by itself (certs.ts and static.ts hold the allowlist).
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { gprError } from '../errors.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { loadCa, loadOrCreateCa } from './ca.js';
import { assertCaPermits, normalizeHosts } from './x509.js';
import { createLeafMinter } from './certs.js';
import { loadStaticCert, selfSignedLocalhost } from './static.js';

export interface TlsMaterial {
  /** The context for a TLS server name; undefined refuses the handshake. */
  secureContext(name: string): SecureContext | undefined;
  /** tls.clientCa loaded: the HTTPS listener must request and verify client certificates. */
  readonly clientCa: ClientCa | undefined;
}

/** The CA(s) of tls.clientCa. */
export interface ClientCa {
  path: string;
  pem: string;
  /** SHA-256 fingerprints of its certificates, to tell a changed CA on reload. */
  fingerprints: string[];
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads tls.clientCa: every certificate must parse and be a CA. Throws GPR_ERR_CA_INVALID / GPR_ERR_CA_MISSING. */
export async function loadClientCa(path: string): Promise<ClientCa> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw gprError('GPR_ERR_CA_MISSING', [`${path} (tls.clientCa)`], err);
    throw gprError('GPR_ERR_CA_INVALID', [path, `tls.clientCa cannot be read: ${(err as Error).message}`], err);
  }
  const blocks = pem.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) throw gprError('GPR_ERR_CA_INVALID', [path, 'tls.clientCa holds no PEM certificate']);
  const fingerprints = blocks.map((block, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw gprError('GPR_ERR_CA_INVALID', [path, `tls.clientCa certificate ${i + 1} does not parse: ${(err as Error).message}`], err);
    }
    if (!cert.ca) throw gprError('GPR_ERR_CA_INVALID', [path, `tls.clientCa certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) is not a CA`]);
    return cert.fingerprint256;
  });
  return { path, pem: blocks.join('\n') + '\n', fingerprints };
}

/**
 * Loads (or, for the embedded default, creates) everything `tls` names and
 * checks it; throws GPR_ERR_CA_* / GPR_ERR_CERT_INVALID on any problem, so a
 * reload with bad certificate material changes nothing.
 */
export async function loadTlsMaterial(tls: Config['tls'], log: Logger): Promise<TlsMaterial> {
  const hosts = normalizeHosts(tls.hosts);
  const clientCa = tls.clientCa === undefined ? undefined : await loadClientCa(tls.clientCa);
  const clientCaPem = clientCa?.pem;
  let forHost: (name: string) => SecureContext | undefined;
  if (tls.cert !== undefined && tls.key !== undefined) {
    forHost = (await loadStaticCert({ certPath: tls.cert, keyPath: tls.key, hosts, clientCaPem })).secureContext;
  } else {
    let ca;
    if (tls.ca) {
      ca = await loadCa({ certPath: tls.ca.cert, keyPath: tls.ca.key });
      assertCaPermits(ca, hosts);
    } else {
      const loaded = await loadOrCreateCa(tls.dir, hosts);
      if (loaded.created) log.info({ dir: tls.dir, fingerprint256: loaded.ca.fingerprint256 }, 'created CA');
      ca = loaded.ca;
    }
    const minter = createLeafMinter({ ca, hosts, leafValidityHours: tls.leafValidityHours, clientCaPem });
    minter.premint();
    forHost = (name) => minter.secureContext(name);
  }
  // `localhost` gets its own self-signed certificate, outside the CA (whose
  // name constraints could not permit it anyway): it is what `npm start`
  // serves to a local client, e.g. curl --cacert certs/localhost.pem.
  const local = await selfSignedLocalhost(tls.dir);
  const localContext = createSecureContext({ cert: local.certPem, key: local.keyPem, minVersion: 'TLSv1.2', ...(clientCaPem ? { ca: clientCaPem } : {}) });
  return {
    clientCa,
    secureContext(name) {
      return name.toLowerCase().replace(/\.$/, '') === 'localhost' ? localContext : forHost(name);
    },
  };
}

/** The parts of a TLS server that client authentication changes (Node reads them per connection). */
interface ClientAuthServer {
  requestCert: boolean;
  rejectUnauthorized: boolean;
  setTicketKeys(keys: Buffer): void;
}

/**
 * Makes `server` (the HTTPS listener) ask for and verify client certificates
 * when `material` has a client CA, for connections accepted from now on.
 * When the client CA changes (on, off, or another CA), the session ticket keys
 * are replaced: a ticket issued before must not resume a session that skips
 * the new certificate check.
 */
export function applyClientAuth(server: object, material: TlsMaterial | undefined, previous: TlsMaterial | undefined): void {
  // tls.Server keeps these as instance fields and reads them for each new
  // connection; @types/node does not declare them.
  const s = server as ClientAuthServer;
  s.requestCert = material?.clientCa !== undefined;
  s.rejectUnauthorized = true;
  const key = (m: TlsMaterial | undefined) => m?.clientCa?.fingerprints.join(',') ?? '';
  if (previous !== material && key(previous) !== key(material)) s.setTicketKeys(randomBytes(48));
}

/** The files `tls` names (client CA, CA, static leaf), whose changes a config watch reloads for too. */
export function tlsFiles(tls: Config['tls']): string[] {
  return [tls.clientCa, tls.ca?.cert, tls.ca?.key, tls.cert, tls.key].filter((f): f is string => f !== undefined);
}
