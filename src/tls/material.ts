/**
 * @module tls/material
 * What the HTTPS listener serves for one runtime, built from `config.tls`:
 * minted leaves from the CA (the project's in `tls.dir`, created on first
 * start, or a bring-your-own one), or a static leaf; plus the self-signed
 * `localhost` certificate of the embedded default.
 * Must not: decide names by itself (certs.ts and static.ts hold the allowlist).
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { loadCa, loadOrCreateCa } from './ca.js';
import { assertCaPermits, normalizeHosts } from './x509.js';
import { createLeafMinter } from './certs.js';
import { loadStaticCert, selfSignedLocalhost } from './static.js';

export interface TlsMaterial {
  /** The context for a TLS server name; undefined refuses the handshake. */
  secureContext(name: string): SecureContext | undefined;
}

/**
 * Loads (or, for the embedded default, creates) everything `tls` names and
 * checks it; throws GPR_ERR_CA_* / GPR_ERR_CERT_INVALID on any problem, so a
 * reload with bad certificate material changes nothing.
 */
export async function loadTlsMaterial(tls: Config['tls'], log: Logger): Promise<TlsMaterial> {
  const hosts = normalizeHosts(tls.hosts);
  let forHost: (name: string) => SecureContext | undefined;
  if (tls.cert !== undefined && tls.key !== undefined) {
    forHost = (await loadStaticCert({ certPath: tls.cert, keyPath: tls.key, hosts })).secureContext;
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
    const minter = createLeafMinter({ ca, hosts, leafValidityHours: tls.leafValidityHours });
    minter.premint();
    forHost = (name) => minter.secureContext(name);
  }
  // `localhost` gets its own self-signed certificate, outside the CA (whose
  // name constraints could not permit it anyway): it is what `npm start`
  // serves to a local client, e.g. curl --cacert certs/localhost.pem.
  const local = await selfSignedLocalhost(tls.dir);
  const localContext = createSecureContext({ cert: local.certPem, key: local.keyPem, minVersion: 'TLSv1.2' });
  return {
    secureContext(name) {
      return name.toLowerCase().replace(/\.$/, '') === 'localhost' ? localContext : forHost(name);
    },
  };
}
