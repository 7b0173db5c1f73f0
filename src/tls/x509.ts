/**
 * @module tls/x509
 * Owns: the X.509 encoding for this project. node-forge's ASN.1 toolkit builds
 * each TBSCertificate (forge's `cert.sign()` would default to SHA-1, signs only
 * with RSA in pure JavaScript and cannot encode name constraints), node:crypto
 * signs it with SHA-256 (RSA or ECDSA). Also reads the few fields of a CA
 * certificate that node:crypto's `X509Certificate` does not expose (subject DER,
 * key identifier, keyUsage, name constraints), checks DNS names against them,
 * and holds the pure pieces ca.ts, certs.ts and static.ts share (the LoadedCa
 * shape, host-list and PEM parsing), so certs.ts need not import ca.ts's I/O.
 * Must not: do I/O, read the environment, keep state, or decide which names
 * get a certificate (certs.ts does).
 */
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { gprError } from '../errors.js';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

/** Parts of node-forge 1.4 that exist at runtime but are missing from @types/node-forge. */
interface ForgeInternals {
  /** Wraps extensions in the `[3] EXPLICIT Extensions` of a TBSCertificate. */
  certificateExtensionsToAsn1(exts: readonly object[]): Asn1;
  /** `fromDer` with options; `decodeBitStrings: false` keeps BIT STRINGs as raw bytes. */
  fromDer(bytes: string, options: { strict: boolean; decodeBitStrings: boolean }): Asn1;
}
const forgePki = forge.pki as unknown as Pick<ForgeInternals, 'certificateExtensionsToAsn1'>;
const forgeAsn1 = forge.asn1 as unknown as Pick<ForgeInternals, 'fromDer'>;

const OID = {
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  nameConstraints: '2.5.29.30',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
} as const;

const { UNIVERSAL, CONTEXT_SPECIFIC } = asn1.Class;
/** A context-specific tag number, typed as forge wants it. */
const tag = (n: number): forge.asn1.Type => n as forge.asn1.Type;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function toBinary(buf: Buffer): string {
  return buf.toString('binary');
}

function derOf(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

function parseDer(der: Buffer): Asn1 {
  // BIT STRINGs stay raw: forge would otherwise try to decode their contents
  // as ASN.1, and re-encoding must reproduce the input byte for byte.
  return forgeAsn1.fromDer(toBinary(der), { strict: true, decodeBitStrings: false });
}

function children(node: Asn1 | undefined): Asn1[] {
  return node !== undefined && Array.isArray(node.value) ? node.value : [];
}

function bytesOf(node: Asn1 | undefined): string {
  return node !== undefined && typeof node.value === 'string' ? node.value : '';
}

/** PEM text of a DER certificate, 64-column base64 as OpenSSL writes it. */
export function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * A random serial number: 16 bytes, positive and minimally encoded (first byte
 * 0x01..0x7f), as RFC 5280 4.1.2.2 asks and Go's strict DER parser requires.
 */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) || 0x01;
  return serial;
}

/**
 * The key identifier of a public key: SHA-1 of the subjectPublicKey BIT STRING
 * (RFC 5280 4.2.1.2, method 1), as OpenSSL and Go compute it.
 */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = parseDer(publicKey.export({ type: 'spki', format: 'der' }));
  // The BIT STRING's first content byte counts unused bits; it is not key material.
  const bits = bytesOf(children(spki)[1]).slice(1);
  return createHash('sha1').update(bits, 'binary').digest();
}

/** The SHA-256 signature algorithm for a CA key; RSA and ECDSA keys only. */
function signatureAlgorithm(key: KeyObject): Asn1 {
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    // RFC 4055 section 5: the parameters of sha256WithRSAEncryption are NULL.
    return asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID.sha256WithRSAEncryption).getBytes()),
      asn1.create(UNIVERSAL, asn1.Type.NULL, false, ''),
    ]);
  }
  if (type === 'ec') {
    // RFC 5758 section 3.2: the parameters of ecdsa-with-SHA256 are absent.
    return asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(OID.ecdsaWithSHA256).getBytes()),
    ]);
  }
  throw new Error(`unsupported key type ${String(type)}; use an RSA or ECDSA key`);
}

/** True when certificates can be signed with `key` (RSA or ECDSA). */
export function isSupportedSigningKey(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'ec';
}

function dateToAsn1(date: Date): Asn1 {
  // RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return date.getUTCFullYear() < 2050
    ? asn1.create(UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

/** A Name with a commonName and an optional organizationName, both UTF8String. */
function nameToAsn1(name: DistinguishedName): Asn1 {
  // forge reads `valueTagClass` as the value's ASN.1 type (@types calls it a Class).
  const utf8 = asn1.Type.UTF8 as unknown as forge.asn1.Class;
  const attributes: forge.pki.CertificateField[] = [];
  if (name.organization !== undefined) {
    attributes.push({ type: OID.organizationName, value: name.organization, valueTagClass: utf8 });
  }
  attributes.push({ type: OID.commonName, value: name.commonName, valueTagClass: utf8 });
  return forge.pki.distinguishedNameToAsn1({ attributes });
}

// ---------------------------------------------------------------------------
// Extensions (forge extension objects; forge fills in the DER of the ones it knows)
// ---------------------------------------------------------------------------

type Extension = { name?: string; id?: string; critical?: boolean; value?: Asn1 } & Record<string, unknown>;

function subjectKeyIdentifierExt(publicKey: KeyObject): Extension {
  return {
    name: 'subjectKeyIdentifier',
    value: asn1.create(UNIVERSAL, asn1.Type.OCTETSTRING, false, toBinary(keyIdentifier(publicKey))),
  };
}

function authorityKeyIdentifierExt(issuerKeyId: Buffer): Extension {
  // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
  return {
    name: 'authorityKeyIdentifier',
    value: asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(CONTEXT_SPECIFIC, tag(0), false, toBinary(issuerKeyId)),
    ]),
  };
}

/**
 * NameConstraints (RFC 5280 4.2.1.10) permitting the given DNS names and their
 * subdomains, and excluding every IPv4 and IPv6 address: without the exclusion a
 * leaked CA key could still mint a certificate for an IP-address SAN, which
 * DNS-only constraints leave unconstrained. forge 1.4 can parse this extension
 * but not encode it, so it is built here.
 */
function nameConstraintsExt(permittedDnsNames: readonly string[]): Extension {
  const subtree = (base: Asn1): Asn1 => asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [base]);
  const permitted = permittedDnsNames.map((name) => subtree(asn1.create(CONTEXT_SPECIFIC, tag(2), false, name)));
  // iPAddress [7]: address followed by mask; all-zero means 0.0.0.0/0 and ::/0.
  const excluded = [8, 32].map((len) => subtree(asn1.create(CONTEXT_SPECIFIC, tag(7), false, '\0'.repeat(len))));
  return {
    id: OID.nameConstraints,
    critical: true,
    value: asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [
      asn1.create(CONTEXT_SPECIFIC, tag(0), true, permitted),
      asn1.create(CONTEXT_SPECIFIC, tag(1), true, excluded),
    ]),
  };
}

function extensionsToAsn1(exts: Extension[]): Asn1 {
  // setExtensions() fills in `value` for the extensions forge knows by name
  // (keyUsage, basicConstraints, extKeyUsage, subjectAltName) and keeps the
  // values given here for the others.
  const scratch = forge.pki.createCertificate();
  scratch.setExtensions(exts);
  return forgePki.certificateExtensionsToAsn1(scratch.extensions as object[]);
}

// ---------------------------------------------------------------------------
// Building and signing
// ---------------------------------------------------------------------------

/** The subject or issuer names this project writes. */
export interface DistinguishedName {
  commonName: string;
  organization?: string;
}

interface TbsSpec {
  serial: Buffer;
  /** DER of the issuer Name, copied byte for byte from the CA certificate. */
  issuerDer: Buffer;
  subject: Asn1;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: Extension[];
  signingKey: KeyObject;
}

/** A signed certificate in both encodings. */
export interface BuiltCertificate {
  der: Buffer;
  pem: string;
}

function buildAndSign(spec: TbsSpec): BuiltCertificate {
  const algorithm = signatureAlgorithm(spec.signingKey);
  const tbs = asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [
    // version [0] EXPLICIT v3 (2)
    asn1.create(CONTEXT_SPECIFIC, tag(0), true, [asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, '\x02')]),
    asn1.create(UNIVERSAL, asn1.Type.INTEGER, false, toBinary(spec.serial)),
    algorithm,
    parseDer(spec.issuerDer),
    asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [dateToAsn1(spec.notBefore), dateToAsn1(spec.notAfter)]),
    spec.subject,
    parseDer(spec.publicKey.export({ type: 'spki', format: 'der' })),
    extensionsToAsn1(spec.extensions),
  ]);
  const tbsDer = derOf(tbs);
  // node:crypto signs natively (0.2 ms for RSA-2048, 0.02 ms for P-256, where
  // forge's pure-JS RSA takes 17 ms); ECDSA signatures come out DER-encoded, as X.509 wants.
  const signature = sign('sha256', tbsDer, spec.signingKey);
  const der = derOf(
    asn1.create(UNIVERSAL, asn1.Type.SEQUENCE, true, [
      tbs,
      algorithm,
      asn1.create(UNIVERSAL, asn1.Type.BITSTRING, false, '\0' + toBinary(signature)),
    ]),
  );
  return { der, pem: derToPem(der) };
}

/** Inputs of {@link buildCaCertificate}. */
export interface CaCertificateSpec {
  subject: DistinguishedName;
  /** The CA key pair; the certificate is self-signed with it. */
  publicKey: KeyObject;
  privateKey: KeyObject;
  /** DNS names the CA may issue for (name constraints); at least one. */
  permittedDnsNames: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * A self-signed, name-constrained CA certificate: basicConstraints CA:TRUE,
 * pathlen:0 (critical), keyUsage keyCertSign + cRLSign (critical),
 * subjectKeyIdentifier, nameConstraints (critical), SHA-256 signature.
 */
export function buildCaCertificate(spec: CaCertificateSpec): BuiltCertificate {
  const subject = nameToAsn1(spec.subject);
  return buildAndSign({
    serial: randomSerial(),
    issuerDer: derOf(subject),
    subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: spec.publicKey,
    signingKey: spec.privateKey,
    extensions: [
      { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
      { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
      subjectKeyIdentifierExt(spec.publicKey),
      nameConstraintsExt(spec.permittedDnsNames),
    ],
  });
}

/** The issuing side of a leaf: what {@link buildLeafCertificate} needs from a CA. */
export interface Issuer {
  /** DER of the CA certificate's subject Name (becomes the leaf's issuer). */
  subjectDer: Buffer;
  /** The CA's subjectKeyIdentifier (becomes the leaf's authorityKeyIdentifier). */
  keyIdentifier: Buffer;
  /** The CA private key (RSA or ECDSA). */
  privateKey: KeyObject;
}

/** Inputs of {@link buildLeafCertificate}. */
export interface LeafCertificateSpec {
  /** The issuing CA; omit for a self-signed certificate. */
  issuer?: Issuer;
  /** Subject commonName; Go ignores it, the SAN is what counts. */
  commonName: string;
  dnsNames: readonly string[];
  ipAddresses?: readonly string[];
  publicKey: KeyObject;
  /** Signs a self-signed certificate; ignored when `issuer` is given. */
  privateKey?: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

/**
 * A TLS server certificate: basicConstraints CA:FALSE, keyUsage
 * digitalSignature (+ keyEncipherment for an RSA key), extKeyUsage serverAuth,
 * subjectAltName, subject and authority key identifiers, random 16-byte serial,
 * SHA-256 signature.
 */
export function buildLeafCertificate(spec: LeafCertificateSpec): BuiltCertificate {
  const subject = nameToAsn1({ commonName: spec.commonName });
  const signingKey = spec.issuer?.privateKey ?? spec.privateKey;
  if (signingKey === undefined) throw new Error('a self-signed certificate needs privateKey');
  const issuerKeyId = spec.issuer?.keyIdentifier ?? keyIdentifier(spec.publicKey);
  const altNames = [
    ...spec.dnsNames.map((value) => ({ type: 2, value })),
    ...(spec.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  return buildAndSign({
    serial: randomSerial(),
    issuerDer: spec.issuer?.subjectDer ?? derOf(subject),
    subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: spec.publicKey,
    signingKey,
    extensions: [
      { name: 'basicConstraints', critical: true, cA: false },
      {
        name: 'keyUsage',
        critical: true,
        digitalSignature: true,
        // RSA key exchange (TLS 1.2 non-ECDHE suites) encrypts to the key.
        keyEncipherment: spec.publicKey.asymmetricKeyType === 'rsa',
      },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
      subjectKeyIdentifierExt(spec.publicKey),
      authorityKeyIdentifierExt(issuerKeyId),
    ],
  });
}

// ---------------------------------------------------------------------------
// Reading a CA certificate
// ---------------------------------------------------------------------------

/** What {@link inspectCertificate} reads from a certificate's DER. */
export interface CertificateFields {
  /** DER of the subject Name. */
  subjectDer: Buffer;
  /** subjectKeyIdentifier, or undefined when the extension is absent. */
  subjectKeyIdentifier: Buffer | undefined;
  /** keyUsage keyCertSign bit; undefined when the extension is absent (any use allowed). */
  keyCertSign: boolean | undefined;
  /** Name constraints; undefined when the extension is absent (any name allowed). */
  nameConstraints: { permittedDns: string[]; excludedDns: string[] } | undefined;
}

/**
 * Reads the subject, key identifier, keyUsage and name constraints of a DER
 * certificate. Throws a plain Error on malformed DER (callers add the code).
 */
export function inspectCertificate(der: Buffer): CertificateFields {
  const tbs = children(parseDer(der))[0];
  const fields = children(tbs);
  // version is [0] EXPLICIT and optional (absent for v1 certificates).
  const first = fields[0];
  const offset = first?.tagClass === CONTEXT_SPECIFIC && first.type === tag(0) ? 1 : 0;
  const subject = fields[offset + 4];
  if (subject === undefined) throw new Error('not an X.509 certificate');
  const result: CertificateFields = {
    subjectDer: derOf(subject),
    subjectKeyIdentifier: undefined,
    keyCertSign: undefined,
    nameConstraints: undefined,
  };
  const extensions = fields.find((f) => f.tagClass === CONTEXT_SPECIFIC && f.type === tag(3));
  for (const ext of children(children(extensions)[0])) {
    const parts = children(ext);
    const oid = asn1.derToOid(bytesOf(parts[0]));
    const value = bytesOf(parts[parts.length - 1]);
    if (oid === OID.subjectKeyIdentifier) {
      result.subjectKeyIdentifier = Buffer.from(bytesOf(forge.asn1.fromDer(value)), 'binary');
    } else if (oid === OID.keyUsage) {
      // BIT STRING: unused-bit count, then flags; keyCertSign is bit 5 (0x04).
      const bits = bytesOf(forgeAsn1.fromDer(value, { strict: true, decodeBitStrings: false }));
      result.keyCertSign = bits.length > 1 && (bits.charCodeAt(1) & 0x04) !== 0;
    } else if (oid === OID.nameConstraints) {
      const nc = { permittedDns: [] as string[], excludedDns: [] as string[] };
      for (const trees of children(forge.asn1.fromDer(value))) {
        const list = trees.type === tag(0) ? nc.permittedDns : nc.excludedDns;
        for (const subtree of children(trees)) {
          const base = children(subtree)[0];
          // dNSName [2] IA5String
          if (base?.tagClass === CONTEXT_SPECIFIC && base.type === tag(2)) list.push(bytesOf(base).toLowerCase());
        }
      }
      result.nameConstraints = nc;
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A host name as the allowlist compares it: lower case, one trailing dot
 * removed. Returns undefined when the result is not a DNS name (IP addresses,
 * wildcards, empty labels, over 253 bytes).
 */
export function normalizeDnsName(name: string): string | undefined {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n.length === 0 || n.length > 253) return undefined;
  if (!n.split('.').every((label) => DNS_LABEL.test(label))) return undefined;
  // All-numeric last label: an IPv4 address, not a host name.
  if (/^[0-9]+$/.test(n.slice(n.lastIndexOf('.') + 1))) return undefined;
  return n;
}

/** RFC 5280 4.2.1.10: `golang.org` matches itself and subdomains; `.golang.org` only subdomains. */
function dnsConstraintMatches(constraint: string, name: string): boolean {
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return name.endsWith(c);
  return name === c || name.endsWith('.' + c);
}

/**
 * True when name constraints let a CA issue for `name` (already normalized):
 * inside a permitted DNS subtree (or none are listed) and outside every excluded one.
 */
export function dnsNamePermitted(
  constraints: { permittedDns: readonly string[]; excludedDns: readonly string[] } | undefined,
  name: string,
): boolean {
  if (constraints === undefined) return true;
  if (constraints.excludedDns.some((c) => dnsConstraintMatches(c, name))) return false;
  return constraints.permittedDns.length === 0 || constraints.permittedDns.some((c) => dnsConstraintMatches(c, name));
}

// ---------------------------------------------------------------------------
// Shared by ca.ts, certs.ts and static.ts (pure, so certs.ts stays free of I/O)
// ---------------------------------------------------------------------------

/** Certificates start an hour in the past so a client whose clock is behind accepts them. */
export const CLOCK_SKEW_MS = 3_600_000;

/** A CA ready to sign: the certificate, its key and the fields leaf minting needs. */
export interface LoadedCa {
  /** Where the certificate and key were read from (for messages). */
  readonly certPath: string;
  readonly keyPath: string;
  /** PEM of the CA certificate alone (a bundle file is cut to its first certificate). */
  readonly certPem: string;
  readonly cert: X509Certificate;
  /** Subject DER, key identifier and private key, as x509.ts signs with them. */
  readonly issuer: Issuer;
  /** The CA's DNS name constraints; undefined when it has none (it may sign for any name). */
  readonly nameConstraints: { readonly permittedDns: readonly string[]; readonly excludedDns: readonly string[] } | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 fingerprint, colon-separated upper-case hex as OpenSSL prints it. */
  readonly fingerprint256: string;
}

/**
 * Lower-cases and checks tls.hosts; throws GPR_ERR_CONFIG_INVALID naming the
 * first bad entry. Shared with certs.ts so the CA and the minter agree.
 */
export function normalizeHosts(hosts: readonly string[]): string[] {
  if (hosts.length === 0) throw gprError('GPR_ERR_CONFIG_INVALID', ['', 'tls.hosts must list at least one host name']);
  const out: string[] = [];
  hosts.forEach((host, i) => {
    const name = normalizeDnsName(host);
    if (name === undefined) {
      throw gprError('GPR_ERR_CONFIG_INVALID', ['', `tls.hosts[${i}] must be a DNS host name, got ${JSON.stringify(host)}`]);
    }
    if (!out.includes(name)) out.push(name);
  });
  return out;
}

/** Parses the first certificate of a PEM file; plain errors on failure (callers add the code). */
export function parseFirstCertificate(pem: string): X509Certificate {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate (-----BEGIN CERTIFICATE-----) in it');
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new Error(`the PEM certificate does not parse: ${(err as Error).message}`, { cause: err });
  }
}

/** Parses a PEM private key; plain errors with the reason (encrypted, garbage) on failure. */
export function parsePrivateKey(pem: string): KeyObject {
  // PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`) or legacy OpenSSL (`Proc-Type: 4,ENCRYPTED`):
  // without a passphrase OpenSSL 3 only says "interrupted or cancelled".
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|^Proc-Type: *4, *ENCRYPTED/m.test(pem)) {
    throw new Error('the private key is encrypted; store it unencrypted with mode 0600 (openssl pkey -in KEY -out KEY)');
  }
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(`no PEM private key in it (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Throws GPR_ERR_CA_INVALID when the CA's name constraints do not permit every
 * host: Go would reject the leaves. `hosts` must be normalized already.
 */
export function assertCaPermits(ca: LoadedCa, hosts: readonly string[]): void {
  const refused = hosts.filter((host) => !dnsNamePermitted(ca.nameConstraints, host));
  if (refused.length > 0) {
    const permitted = ca.nameConstraints?.permittedDns.join(', ') ?? '';
    throw gprError('GPR_ERR_CA_INVALID', [
      ca.certPath,
      `its name constraints permit ${permitted || 'no DNS names'}, not tls.hosts ${refused.join(', ')}; ` +
        'make a CA for the new list with `go-proxy-rewriter certs init --force` (clients must then trust the new CA)',
    ]);
  }
}

