/**
 * @module cache/http
 * HTTP caching rules for Go proxy objects: cache keys, freshness by endpoint
 * kind, ETags and If-None-Match, Cache-Control values. Pure.
 * Must not: hold state or do I/O.
 */
// crypto.hash (one-shot, Node >= 20.12): the same digest as createHash at a third of its cost per MISS.
import { hash } from 'node:crypto';
import type { ProxyRequest } from '../goproxy/path.js';

/** Cache-Control for immutable objects (.mod, .zip, .info of a canonical version). */
export const IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';
/** Cache-Control for answers that must not be stored (failures). */
export const NO_STORE = 'no-store';

/** How long a response for a request stays fresh. */
export interface Freshness {
  /** Never changes: evicted only by size. */
  immutable: boolean;
  /** Fresh lifetime in ms (Infinity when immutable). */
  ttlMs: number;
}

/**
 * The cache key of a request: the object it names, not the backend path, so
 * the cache survives a rewrite change on reload.
 */
export function cacheKey(request: ProxyRequest): string {
  switch (request.kind) {
    case 'sumdb':
      return `sumdb ${request.name} ${request.sumdbPath}`;
    case 'list':
    case 'latest':
      return `${request.kind} ${request.escapedModule}`;
    default:
      return `${request.kind} ${request.escapedModule} ${request.escapedVersion}`;
  }
}

/** True for objects the protocol defines as immutable. */
export function isImmutable(request: ProxyRequest): boolean {
  switch (request.kind) {
    case 'mod':
    case 'zip':
      return true;
    case 'info':
      return request.canonical;
    case 'sumdb':
      return request.immutable;
    default:
      return false;
  }
}

/**
 * Freshness of a backend answer with `status` for `request`: 200 of an
 * immutable object never expires; other 200s live `mutableTtlMs`; 404/410
 * live `notFoundTtlMs`. Other statuses are not cacheable (undefined).
 */
export function freshness(
  request: ProxyRequest,
  status: number,
  ttl: { mutableTtlMs: number; notFoundTtlMs: number },
): Freshness | undefined {
  if (status === 200) return isImmutable(request) ? { immutable: true, ttlMs: Infinity } : { immutable: false, ttlMs: ttl.mutableTtlMs };
  if (status === 404 || status === 410) return { immutable: false, ttlMs: ttl.notFoundTtlMs };
  return undefined;
}

/** Cache-Control header for a cached answer. */
export function cacheControl(f: Freshness): string {
  return f.immutable ? IMMUTABLE_CACHE_CONTROL : `public, max-age=${Math.floor(f.ttlMs / 1000)}`;
}

/** A strong ETag from a body hash: `"<27 chars of base64url sha256>"`. */
export function bodyEtag(body: Uint8Array): string {
  return `"${hash('sha256', body, 'base64url').slice(0, 27)}"`;
}

/**
 * A strong ETag for an immutable object, known before its body arrives so a
 * streamed MISS can carry it: the object never changes, so its name is a
 * valid validator.
 */
export function keyEtag(key: string): string {
  return `"k-${hash('sha256', key, 'base64url').slice(0, 25)}"`;
}

/**
 * If-None-Match evaluation (RFC 9110 13.1.2, weak comparison): true when the
 * client's copy is current and a 304 is the answer.
 */
export function notModified(ifNoneMatch: string | undefined, etag: string | undefined): boolean {
  if (!ifNoneMatch || !etag) return false;
  if (ifNoneMatch.trim() === '*') return true;
  const ours = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === ours);
}

/** Response headers the cache keeps and replays (lower case). */
export const STORED_HEADERS = ['content-type', 'content-encoding', 'etag', 'last-modified'] as const;

/**
 * Why an answer must not be stored at all, or undefined when it may be:
 * `Cache-Control: no-store` or `private`, or a `Set-Cookie` (RFC 9111 3, 5.2.2).
 */
export function unstorableReason(headers: Record<string, string | string[] | undefined>): string | undefined {
  const cc = String(headers['cache-control'] ?? '').toLowerCase();
  if (/(^|[\s,])no-store([\s,=]|$)/.test(cc)) return 'Cache-Control: no-store';
  if (/(^|[\s,])private([\s,=]|$)/.test(cc)) return 'Cache-Control: private';
  if (headers['set-cookie'] !== undefined) return 'Set-Cookie';
  return undefined;
}

/** How many body bytes {@link invalidImmutable} needs to decide (Infinity: the whole body). */
export function validationBytes(kind: ProxyRequest['kind']): number {
  if (kind === 'zip') return 4;
  if (kind === 'mod') return 8192;
  if (kind === 'info') return Infinity;
  return 0;
}

/** Largest `.info` body we parse to validate it. */
export const MAX_INFO_BYTES = 1024 * 1024;

/**
 * Why `body` (the first {@link validationBytes} bytes, or the whole body when
 * `complete`) is not a valid immutable `.info`, `.mod` or `.zip`, or undefined
 * when it is: `.info` must be a JSON object with a string `Version`, `.zip`
 * must open with a local file header `PK\x03\x04` (or be the empty archive
 * `PK\x05\x06`), `.mod` must be text (no NUL, valid UTF-8, not markup).
 */
export function invalidImmutable(kind: ProxyRequest['kind'], body: Buffer, complete: boolean): string | undefined {
  switch (kind) {
    case 'zip': {
      const sig = body.subarray(0, 4).toString('latin1');
      return sig === 'PK\x03\x04' || sig === 'PK\x05\x06' ? undefined : 'not a zip archive (no PK signature)';
    }
    case 'mod': {
      if (body.includes(0)) return 'not text (NUL byte)';
      if (/^\s*</.test(body.subarray(0, 64).toString('latin1'))) return 'markup, not a go.mod';
      try {
        // A prefix may end inside a character: `stream` keeps its tail pending.
        new TextDecoder('utf-8', { fatal: true }).decode(body, { stream: !complete });
      } catch {
        return 'not UTF-8 text';
      }
      return undefined;
    }
    case 'info': {
      if (!complete) return `larger than ${MAX_INFO_BYTES} bytes`;
      try {
        const v: unknown = JSON.parse(body.toString('utf8'));
        if (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { Version?: unknown }).Version === 'string') return undefined;
        return 'JSON without a Version';
      } catch {
        return 'not JSON';
      }
    }
    default:
      return undefined;
  }
}
