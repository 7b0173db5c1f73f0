/**
 * @module cache/store
 * The byte-bounded in-memory LRU of backend answers, and the registry of
 * in-flight fetches that makes concurrent misses for one object share one
 * backend request. Survives config reloads (the server keeps one store).
 * Must not: do I/O, or know about HTTP requests and responses.
 */
import { LRUCache } from 'lru-cache';
import type { Flight } from './flight.js';

/** One stored backend answer. */
export interface CachedObject {
  status: number;
  contentType: string;
  /** Strong ETag, always set on stored objects. */
  etag: string;
  lastModified?: string;
  body: Buffer;
  /** Fresh until this time (ms since epoch); Infinity for immutable objects. */
  expiresAtMs: number;
  /** Cache-Control header to answer with. */
  cacheControl: string;
}

export interface CacheStoreOptions {
  /** Upper bound of the stored bytes (bodies plus a fixed per-entry overhead). */
  maxBytes: number;
  /** Larger bodies are not stored. */
  maxEntryBytes: number;
  /** Clock in ms; injectable for tests. Default Date.now. */
  now?: () => number;
}

/** Bytes charged per entry beyond its body: key, headers and bookkeeping. */
export const ENTRY_OVERHEAD_BYTES = 512;

export interface Lookup {
  object: CachedObject;
  fresh: boolean;
}

export class CacheStore {
  #lru: LRUCache<string, CachedObject>;
  #maxEntryBytes: number;
  readonly now: () => number;
  /** Fetches under way, by cache key (see cache/flight.ts). */
  readonly flights = new Map<string, Flight>();
  /** Counters for metrics and STATUS=. */
  readonly stats = { hits: 0, misses: 0, stale: 0, bypass: 0 };

  constructor(opts: CacheStoreOptions) {
    this.now = opts.now ?? Date.now;
    this.#maxEntryBytes = opts.maxEntryBytes;
    this.#lru = CacheStore.#makeLru(opts.maxBytes, opts.maxEntryBytes);
  }

  static #makeLru(maxBytes: number, maxEntryBytes: number): LRUCache<string, CachedObject> {
    return new LRUCache<string, CachedObject>({
      maxSize: maxBytes,
      maxEntrySize: Math.min(maxBytes, maxEntryBytes + ENTRY_OVERHEAD_BYTES),
      sizeCalculation: (o) => o.body.length + ENTRY_OVERHEAD_BYTES,
    });
  }

  get maxEntryBytes(): number {
    return this.#maxEntryBytes;
  }

  /** The stored object for `key` and whether it is still fresh; marks it recently used. */
  get(key: string): Lookup | undefined {
    const object = this.#lru.get(key);
    return object && { object, fresh: object.expiresAtMs > this.now() };
  }

  /** Stores `object`; false when it is larger than the entry cap. */
  set(key: string, object: CachedObject): boolean {
    if (object.body.length > this.#maxEntryBytes) return false;
    this.#lru.set(key, object);
    return this.#lru.has(key);
  }

  /** Applies new bounds, keeping the most recently used entries that fit. */
  resize(maxBytes: number, maxEntryBytes: number): void {
    if (maxBytes === this.#lru.maxSize && maxEntryBytes === this.#maxEntryBytes) return;
    const old = [...this.#lru.entries()].reverse(); // least recently used first
    this.#lru = CacheStore.#makeLru(maxBytes, maxEntryBytes);
    this.#maxEntryBytes = maxEntryBytes;
    for (const [key, object] of old) this.set(key, object);
  }

  get entries(): number {
    return this.#lru.size;
  }

  /** Bytes charged against maxBytes (always <= maxBytes). */
  get sizeBytes(): number {
    return this.#lru.calculatedSize;
  }

  get maxBytes(): number {
    return this.#lru.maxSize;
  }
}
