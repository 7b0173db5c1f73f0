/**
 * @module cache/http
 * HTTP caching rules for Go proxy objects: cache keys, freshness by endpoint
 * kind, ETags and If-None-Match, Cache-Control values. Pure.
 * Must not: hold state or do I/O.
 */
import { createHash } from 'node:crypto';
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
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/**
 * A strong ETag for an immutable object, known before its body arrives so a
 * streamed MISS can carry it: the object never changes, so its name is a
 * valid validator.
 */
export function keyEtag(key: string): string {
  return `"k-${createHash('sha256').update(key).digest('base64url').slice(0, 25)}"`;
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
