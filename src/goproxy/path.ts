/**
 * @module goproxy/path
 * Turns a request target (`req.url`) into a {@link ProxyRequest}: the module
 * proxy endpoints `/{module}/@v/list`, `/{module}/@v/{version}.info|.mod|.zip`,
 * `/{module}/@latest`, and the checksum database paths `/sumdb/{name}/...`
 * (GOPROXY protocol and "Checksum database" in https://go.dev/ref/mod).
 * Decodes percent-escapes exactly once, then refuses anything that is not
 * printable ASCII or that has "." / ".." / empty elements. An accepted path
 * holds only characters that need no escaping in a URL path, so it is safe to
 * forward in a header, to use as a cache key, and (escaped module and version)
 * to put into a backend URL as is.
 * Must not: do I/O, read `process`, throw, or know about backends and rewrite rules.
 */
import type { ErrorCode } from '../errors.js';
import { decodeModulePath, decodeVersion } from './module.js';
import { isCanonicalVersion } from './semver.js';

export {
  checkModulePath, checkVersion, escapePath, escapeVersion, unescapePath, unescapeVersion,
} from './module.js';
export { isCanonicalVersion } from './semver.js';

/** A parsed Go module proxy or checksum database request. Module paths and versions are given decoded and escaped. */
export type ProxyRequest =
  | { kind: 'list'; module: string; escapedModule: string }
  | { kind: 'latest'; module: string; escapedModule: string }
  | {
      kind: 'info' | 'mod' | 'zip';
      module: string;
      escapedModule: string;
      version: string;
      escapedVersion: string;
      /** true when version is canonical (semver canonical form, pseudo-versions, and +incompatible included) => the object is immutable */
      canonical: boolean;
    }
  | {
      kind: 'sumdb';
      name: string;
      /** the part after /sumdb/{name}/, e.g. "supported", "latest", "lookup/golang.org/x/text@v0.3.0", "tile/8/0/001.p/5" */
      sumdbPath: string;
      op: 'supported' | 'latest' | 'lookup' | 'tile';
      /** lookups and full tiles are immutable; latest, supported and partial tiles (.p/W) are not */
      immutable: boolean;
      /** the decoded module path and version of a lookup (private-pattern checks) */
      module?: string;
      version?: string;
    };

/** The outcome of {@link parseProxyPath}. */
export type ParseResult =
  | {
      ok: true;
      request: ProxyRequest;
      /** percent-decoded path, the form forwarded as X-Go-Proxy-Original-Path; guaranteed printable ASCII with no control chars, so safe in a header */
      path: string;
    }
  | {
      ok: false;
      code: ErrorCode;
      /** args for gprError(code, args) in src/errors.ts, so the message names the input and the problem */
      args: string[];
    };

/** Options of {@link parseProxyPath}. */
export interface ParseOptions {
  /** Longest accepted path (without the query), in UTF-8 bytes. Default 4096. */
  maxPathBytes?: number;
  /** when set (e.g. "sum.golang.org" because the client connected to that host via interception), paths /latest, /lookup/..., /tile/... are parsed as sumdb requests with name = this value */
  sumdbHost?: string;
}

/** Default of {@link ParseOptions.maxPathBytes}. */
export const DEFAULT_MAX_PATH_BYTES = 4096;

type Failure = Extract<ParseResult, { ok: false }>;
type SumdbRequest = Extract<ProxyRequest, { kind: 'sumdb' }>;

const fail = (code: ErrorCode, ...args: string[]): Failure => ({ ok: false, code, args });

/** The input in double quotes, with anything but printable ASCII escaped and long inputs cut. */
function quote(s: string): string {
  const cut = s.length > 200 ? `${s.slice(0, 200)}...` : s;
  return JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function utf8Bytes(s: string): number {
  let n = 0;
  for (const c of s) {
    const cp = c.codePointAt(0) ?? 0;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/**
 * Parses a request target into a {@link ProxyRequest}. Ignores the query
 * (`?go-get=1`); decodes percent-escapes once ("+" stays "+"). Never throws.
 *
 * Errors: GPR_ERR_PATH_TOO_LONG over `maxPathBytes`; GPR_ERR_BAD_ENCODING for a
 * malformed %-escape, or when the decoded path has a control, non-ASCII or
 * backslash character, or a ".", ".." or empty element; GPR_ERR_BAD_MODULE_PATH
 * and GPR_ERR_BAD_VERSION for an invalid (escaped) module path or version,
 * including a non-canonical version for .mod, .zip and sumdb lookups;
 * GPR_ERR_NOT_PROXY_PATH for any other path.
 */
export function parseProxyPath(rawUrl: string, opts: ParseOptions = {}): ParseResult {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const limit = opts.maxPathBytes ?? DEFAULT_MAX_PATH_BYTES;
  const bytes = utf8Bytes(rawPath);
  if (bytes > limit) return fail('GPR_ERR_PATH_TOO_LONG', String(bytes), String(limit));
  // Only origin-form targets ("/..."): not "*", not absolute-form "http://host/...".
  if (!rawPath.startsWith('/')) return fail('GPR_ERR_NOT_PROXY_PATH', quote(rawPath));
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return fail('GPR_ERR_BAD_ENCODING', `malformed %-escape in ${quote(rawPath)}`);
  }
  const unsafe = unsafeReason(path);
  if (unsafe !== undefined) return fail('GPR_ERR_BAD_ENCODING', `${quote(path)} has ${unsafe}`);

  const parsed = route(path, opts.sumdbHost);
  return 'kind' in parsed ? { ok: true, request: parsed, path } : parsed;
}

/** Why a decoded path is unsafe to route, forward or cache, or undefined. */
function unsafeReason(path: string): string | undefined {
  const bad = /[^\x20-\x7e]|\\/.exec(path);
  if (bad !== null) {
    const cp = bad[0].charCodeAt(0);
    if (bad[0] === '\\') return 'a backslash';
    return cp < 0x20 || cp === 0x7f ? 'a control character' : 'a non-ASCII character';
  }
  const dots = /\/\.\.?(?=\/|$)/.exec(path);
  if (dots !== null) return `a "${dots[0].slice(1)}" element`;
  if (path.includes('//')) return 'an empty element';
  return undefined;
}

function route(path: string, sumdbHost: string | undefined): ProxyRequest | Failure {
  const notProxy = fail('GPR_ERR_NOT_PROXY_PATH', quote(path));

  if (path.startsWith('/sumdb/')) {
    const slash = path.indexOf('/', '/sumdb/'.length);
    const name = path.slice('/sumdb/'.length, slash < 0 ? undefined : slash);
    if (slash < 0 || !isHostName(name)) return notProxy;
    return parseSumdb(name, path.slice(slash + 1)) ?? notProxy;
  }
  if (sumdbHost !== undefined && /^\/(latest$|lookup\/|tile\/)/.test(path)) {
    return parseSumdb(sumdbHost, path.slice(1)) ?? notProxy;
  }

  if (path.endsWith('/@latest')) {
    const escapedModule = path.slice(1, -'/@latest'.length);
    const module = moduleOf(escapedModule);
    return typeof module === 'string' ? { kind: 'latest', module, escapedModule } : module;
  }
  const at = path.indexOf('/@v/');
  if (at < 0) return notProxy;
  const escapedModule = path.slice(1, at);
  const file = path.slice(at + '/@v/'.length);
  const ext = /\.(info|mod|zip)$/.exec(file);
  if ((file !== 'list' && ext === null) || file.includes('/')) return notProxy;
  const module = moduleOf(escapedModule);
  if (typeof module !== 'string') return module;
  if (ext === null) return { kind: 'list', module, escapedModule };

  const kind = ext[1] as 'info' | 'mod' | 'zip';
  const escapedVersion = file.slice(0, ext.index);
  const version = versionOf(escapedVersion);
  if (typeof version !== 'string') return version;
  const canonical = isCanonicalVersion(version);
  // Only .info resolves queries (branches, commits); the go command asks for .mod and .zip by canonical version.
  if (!canonical && kind !== 'info') {
    return fail('GPR_ERR_BAD_VERSION', quote(escapedVersion), 'version must be canonical for .mod/.zip');
  }
  return { kind, module, escapedModule, version, escapedVersion, canonical };
}

/** The decoded module path, or the failure that names it and the problem. */
function moduleOf(escaped: string): string | Failure {
  const m = decodeModulePath(escaped);
  return m.ok ? m.value : fail('GPR_ERR_BAD_MODULE_PATH', quote(escaped), m.reason);
}

/**
 * The decoded version, or the failure that names it and the problem.
 * Stricter than x/mod on the wire: of the file-name characters x/mod allows,
 * space, "#", "%", "[", "]", "^", "{" and "}" are refused, so a version is
 * never re-decoded downstream ("%2e%2e%2f" would become "../") and goes into a
 * backend URL as is. Escaped module paths are URL-safe already ([a-z0-9._~/!-]).
 */
function versionOf(escaped: string): string | Failure {
  const v = decodeVersion(escaped);
  if (!v.ok) return fail('GPR_ERR_BAD_VERSION', quote(escaped), v.reason);
  const bad = /[^A-Za-z0-9._~!$&()+,=@-]/.exec(escaped);
  if (bad !== null) return fail('GPR_ERR_BAD_VERSION', quote(escaped), `char '${bad[0]}' is not allowed in a proxy URL`);
  return v.value;
}

/** A lower-case DNS name such as "sum.golang.org" (no port, no path). */
function isHostName(name: string): boolean {
  return name.length <= 253 && /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name);
}

/**
 * The tile paths of golang.org/x/mod `sumdb/tlog` `Tile.Path`: tile/{H}/{L|data}/{K}[.p/{W}],
 * where K is written in groups of three digits, all but the last prefixed
 * with "x" ("x001/x234/567"). At most 5 "x" groups keeps K below 2^63 as tlog's int64 does.
 */
const TILE = /^tile\/([1-9][0-9]?)\/(?:data|0|[1-9][0-9]{0,8})\/((?:x[0-9]{3}\/){0,5})[0-9]{3}(?:\.p\/([1-9][0-9]{0,9}))?$/;

/** Parses the part after /sumdb/{name}/, or undefined when it is no checksum database path. */
function parseSumdb(name: string, sumdbPath: string): SumdbRequest | Failure | undefined {
  const req = (op: SumdbRequest['op'], immutable: boolean): SumdbRequest => ({ kind: 'sumdb', name, sumdbPath, op, immutable });
  if (sumdbPath === 'supported' || sumdbPath === 'latest') return req(sumdbPath, false);
  if (sumdbPath.startsWith('lookup/')) {
    // Module paths never contain "@"; versions may, so split at the first one.
    const spec = sumdbPath.slice('lookup/'.length);
    const at = spec.indexOf('@');
    if (at < 0) return undefined;
    const module = moduleOf(spec.slice(0, at));
    if (typeof module !== 'string') return module;
    const escapedVersion = spec.slice(at + 1);
    const version = versionOf(escapedVersion);
    if (typeof version !== 'string') return version;
    if (!isCanonicalVersion(version)) {
      return fail('GPR_ERR_BAD_VERSION', quote(escapedVersion), 'version must be canonical for a checksum lookup');
    }
    return { ...req('lookup', true), module, version };
  }
  const t = TILE.exec(sumdbPath);
  if (t === null) return undefined;
  const height = Number(t[1]);
  const width = t[3] === undefined ? undefined : Number(t[3]);
  // tlog writes K without leading zero groups, and .p/W only for 0 < W < 2^H.
  if (height > 30 || (t[2] ?? '').startsWith('x000/') || (width !== undefined && width >= 2 ** height)) return undefined;
  return req('tile', width === undefined);
}
