/**
 * @module cache/store
 * The memory tier: a byte-bounded in-memory LRU of backend answers, in front
 * of the disk tier (cache/disk.ts). Survives config reloads (the server keeps
 * one store).
 * Must not: do I/O, know about HTTP requests and responses, or track fills
 * (cache/fill.ts owns those).
 */
import { LRUCache } from 'lru-cache';

/** One stored backend answer. */
export interface CachedObject {
  status: number;
  contentType: string;
  /** Strong ETag, always set on stored objects. */
  etag: string;
  lastModified?: string;
  contentEncoding?: string;
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

  /** Forgets `key`; true when it was stored. */
  delete(key: string): boolean {
    return this.#lru.delete(key);
  }

  /** Forgets every key for which `match` is true; returns how many. */
  deleteWhere(match: (key: string) => boolean): number {
    let n = 0;
    for (const key of [...this.#lru.keys()]) if (match(key) && this.#lru.delete(key)) n++;
    return n;
  }

  /** Keys from most to least recently used. */
  keys(): string[] {
    return [...this.#lru.keys()];
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
