/**
 * @module cache/cache
 * The cache as the handler sees it: one call answers a request from the
 * memory tier, the disk tier, a fill under way in this process, a fill under
 * way in another process sharing the directory, or a new fill. Every answer
 * carries its status record (HIT, MISS, STALE, BYPASS), which this module
 * also counts. Owns the registry of this process's fills.
 * Must not: import upstream/ (the caller passes `fetch`), or write responses.
 *
 * API:
 *   const cache = new Cache({ memory, disk?, warn })
 *   cache.lookup(key)                 sync memory lookup (the HIT fast path)
 *   await cache.answer(key, request, ctx): Answer   everything else
 *   cache.record(status)              counts a status the caller answered itself
 *   cache.purge(module, version?)     memory + disk; returns what was removed
 *   cache.list(module?) / cache.stats()
 */
import { read, readSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { GprError } from '../errors.js';
import type { ProxyRequest } from '../goproxy/path.js';
import { completeProgress, DiskTier, FileBodyReader, tailSpool, type IndexReport, type ObjectHead, type ObjectLease } from './disk.js';
import { Fill, SMALL_OBJECT_BYTES, type BodySource, type FillHead } from './fill.js';
import { isImmutable } from './http.js';
import { CacheStore, type CachedObject, type Lookup } from './store.js';

/** Default of `cache.maxConcurrentFills`. */
export const DEFAULT_MAX_CONCURRENT_FILLS = 64;

export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

/** How a request is answered: head, body and the status record. */
export interface Answer {
  cache: CacheStatus;
  status: number;
  headers: OutgoingHttpHeaders;
  etag: string | undefined;
  /** The body: a buffer (memory tier) or a stream the caller must consume or destroy. */
  body: Buffer | Readable;
  /** Time to the backend's head, when this answer came from a fill. */
  upstreamMs?: number;
  /** Set on STALE: why the refresh failed. */
  err?: GprError;
  /** For a streamed body without Content-Length: its length once complete (rejects if it breaks off). */
  length?: Promise<number>;
  /**
   * Called once when the response is over: `finished` true when the whole
   * body left through the socket (a Buffer body may then be reused), false
   * when it was cut or never written. Set on disk HITs read into a pooled buffer.
   */
  sent?: (finished: boolean) => void;
}

/**
 * Disk HITs of bodies up to this size are read with one positional read into
 * one buffer and written with one write, as a memory HIT; larger ones stream
 * (FileBodyReader: backpressure, 256 KiB at a time).
 */
export const WHOLE_READ_BYTES = 2 * 1024 * 1024;
/** Most bytes of whole-read disk bodies in flight at once (the rest stream): the memory bound of disk HITs. */
export const WHOLE_READ_BUDGET_BYTES = 32 * 1024 * 1024;
/** Buffers of WHOLE_READ_BYTES kept for reuse: a fresh 1 MiB buffer costs page faults and GC. */
const WHOLE_READ_POOL = 8;
/** Bodies smaller than this get a fresh buffer, not a pooled one. */
const POOLED_MIN_BYTES = 64 * 1024;

/** What a miss needs from the caller. */
export interface MissContext {
  /** Starts the backend request (the handler's one call into upstream/). */
  fetch: () => Promise<BodySource>;
  ttl: { mutableTtlMs: number; notFoundTtlMs: number };
  /** How long past its expiry a mutable 200 is answered STALE while it is refreshed. */
  staleIfErrorMs: number;
  idleTimeoutMs: number;
  maxObjectBytes: number;
  upstreamLabel: string;
  /** Called when a fill starts in this process, and `done` when it is over. */
  onFill?: () => { done(): void };
}

export interface CacheOptions {
  memory: CacheStore;
  /** Absent: memory only. */
  disk?: DiskTier;
  /** Most .zip fills reading a backend body at once; more wait in a queue for a slot (default 64). */
  maxConcurrentFills?: number;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface CacheStats {
  hits: number;
  misses: number;
  stale: number;
  bypass: number;
}

/** One cached object, for `cache ls`. */
export interface ListedObject {
  key: string;
  tier: 'memory' | 'disk';
  bytes: number;
}

export class Cache {
  readonly memory: CacheStore;
  readonly disk: DiskTier | undefined;
  readonly #warn: CacheOptions['warn'];
  readonly #fills = new Map<string, Fill>();
  readonly counts: CacheStats = { hits: 0, misses: 0, stale: 0, bypass: 0 };
  /** Memory held by fills under way (copies, memory spools), bounded by the memory tier's size. */
  readonly #budget: { bytes: number; maxBytes: number };
  /**
   * Fills holding a slot (fetching or reading a body), and the fills waiting
   * for one: a closure each, no buffers; answers wait, never fail. The queue
   * is bounded by the requests waiting on it (limits.maxConnections).
   */
  readonly #slots: { max: number; running: number; queue: Array<() => void> };
  /** Whole-read disk bodies in flight (bytes) and the buffers free for reuse. */
  readonly #whole: { bytes: number; pool: Buffer[] } = { bytes: 0, pool: [] };

  constructor(opts: CacheOptions) {
    this.memory = opts.memory;
    this.disk = opts.disk;
    this.#slots = { max: opts.maxConcurrentFills ?? DEFAULT_MAX_CONCURRENT_FILLS, running: 0, queue: [] };
    this.#warn = opts.warn;
    const memory = this.memory;
    this.#budget = {
      bytes: 0,
      get maxBytes() {
        return memory.maxBytes;
      },
    };
  }

  /** Bytes fills under way hold in memory. */
  get fillBytes(): number {
    return this.#budget.bytes;
  }

  /** Fills under way in this process (queued ones included). */
  get fills(): number {
    return this.#fills.size;
  }

  /** Fills waiting for a slot (`cache.maxConcurrentFills`). */
  get fillsQueued(): number {
    return this.#slots.queue.length;
  }

  /** Takes a fill slot, waiting in the queue when all are taken. */
  #acquire(): Promise<void> {
    const s = this.#slots;
    if (s.running < s.max) {
      s.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => s.queue.push(resolve));
  }

  /** Hands the slot to the next queued fill, or frees it. */
  #release(): void {
    const s = this.#slots;
    const next = s.queue.shift();
    if (next) next();
    else s.running--;
  }

  /** The memory tier's copy of `key`, fresh or not. */
  lookup(key: string): Lookup | undefined {
    return this.memory.get(key);
  }

  /** Counts one answered request by its status record. */
  record(status: CacheStatus): void {
    const c = this.counts;
    if (status === 'HIT') c.hits++;
    else if (status === 'MISS') c.misses++;
    else if (status === 'STALE') c.stale++;
    else c.bypass++;
  }

  /** An answer from a memory object. */
  static fromObject(object: CachedObject, cache: CacheStatus): Answer {
    return { cache, status: object.status, headers: objectHeaders(object), etag: object.etag, body: object.body };
  }

  /**
   * Answers `key`: the disk tier, a fill under way here or in another
   * process, or a new fill. Rejects with a GprError only when the backend
   * failed before a head and there is no stale copy.
   */
  async answer(key: string, request: ProxyRequest, ctx: MissContext): Promise<Answer> {
    const found = this.memory.get(key);
    if (found?.fresh) return this.#counted(Cache.fromObject(found.object, 'HIT'));
    // A stale copy is usable only for staleIfErrorMs past its expiry.
    const stale = found && this.memory.now() - found.object.expiresAtMs <= ctx.staleIfErrorMs ? found : undefined;
    const immutable = isImmutable(request);
    if (stale && !immutable && stale.object.status === 200) {
      // Stale-while-revalidate (issue 9): answer at once, refresh in the background (one fill per key).
      if (!this.#fills.get(key)?.joinable) {
        const refresh = this.#startFill(key, request, ctx, undefined);
        refresh.head.then(
          (head) => {
            if (head.cache === 'BYPASS') this.#warn({ key, backend: ctx.upstreamLabel, status: head.status }, 'cache refresh not stored: keeping the stale copy');
          },
          (err: GprError) => this.#warn({ key, backend: ctx.upstreamLabel, err: err.code }, 'cache refresh failed: keeping the stale copy'),
        );
      }
      return this.#counted(Cache.fromObject(stale.object, 'STALE'));
    }
    for (let attempt = 0; ; attempt++) {
      if (this.disk && immutable) {
        const hit = await this.#fromDisk(key);
        if (hit) return this.#counted(hit);
      }
      const local = this.#fills.get(key);
      if (local?.joinable) return this.#fromFill(local, stale);
      if (!this.disk || !immutable) return this.#fromFill(this.#startFill(key, request, ctx, undefined), stale);
      const lock = await this.disk.tryLock(key);
      if (lock.kind === 'committed') continue;
      const again = this.#fills.get(key);
      if (lock.kind === 'won') {
        if (again?.joinable) {
          // A fill started here while we took the lock: ours is not needed.
          await this.disk.discard(lock.lock, 0, 0);
          return this.#fromFill(again, stale);
        }
        return this.#fromFill(this.#startFill(key, request, ctx, lock.lock), stale);
      }
      if (again?.joinable) return this.#fromFill(again, stale);
      try {
        const tail = await tailSpool(this.disk, lock.spoolPath, lock.holder);
        return this.#counted(fromHead(tail.head, 'MISS', new FileBodyReader(tail.file, tail.bodyOffset, tail.progress, () => {
          tail.progress.stop();
          void tail.file.close().catch(() => {});
        })));
      } catch {
        // The other process failed or died before a head, or already committed: look again.
        if (attempt >= 3) return this.#fromFill(this.#startFill(key, request, ctx, undefined), stale);
      }
    }
  }

  async #fromDisk(key: string): Promise<Answer | undefined> {
    const disk = this.disk as DiskTier;
    const obj = await disk.acquire(key);
    if (!obj) return undefined;
    // Small objects move up to the memory tier.
    if (obj.bodyLength <= Math.min(this.memory.maxEntryBytes, SMALL_OBJECT_BYTES) && obj.head.status === 200) {
      const body = Buffer.alloc(obj.bodyLength);
      const bytesRead = await readBody(obj, body).finally(() => obj.release());
      if (bytesRead !== obj.bodyLength) return undefined;
      const object: CachedObject = {
        status: obj.head.status,
        contentType: obj.head.contentType,
        etag: obj.head.etag,
        ...(obj.head.lastModified ? { lastModified: obj.head.lastModified } : {}),
        ...(obj.head.contentEncoding ? { contentEncoding: obj.head.contentEncoding } : {}),
        body,
        expiresAtMs: Infinity,
        cacheControl: obj.head.cacheControl,
      };
      this.memory.set(key, object);
      return Cache.fromObject(object, 'HIT');
    }
    // Up to WHOLE_READ_BYTES (within the budget): one read, one buffer, one write.
    const whole = this.#whole;
    if (obj.bodyLength <= WHOLE_READ_BYTES && whole.bytes + obj.bodyLength <= WHOLE_READ_BUDGET_BYTES) {
      const pooled = obj.bodyLength >= POOLED_MIN_BYTES;
      const buf = pooled ? (whole.pool.pop() ?? Buffer.allocUnsafeSlow(WHOLE_READ_BYTES)) : Buffer.allocUnsafe(obj.bodyLength);
      whole.bytes += obj.bodyLength;
      let done = false;
      const sent = (finished: boolean): void => {
        if (done) return;
        done = true;
        whole.bytes -= obj.bodyLength;
        if (pooled && finished && whole.pool.length < WHOLE_READ_POOL) whole.pool.push(buf);
      };
      const bytesRead = await readBody(obj, buf).catch(() => -1).finally(() => obj.release());
      if (bytesRead !== obj.bodyLength) {
        sent(false);
        return undefined;
      }
      const answer = fromHead(obj.head, 'HIT', buf.subarray(0, obj.bodyLength));
      answer.headers['content-length'] = obj.bodyLength;
      answer.sent = sent;
      return answer;
    }
    const reader = new FileBodyReader(obj.file, obj.bodyOffset, completeProgress(obj.bodyLength), () => obj.release());
    const answer = fromHead(obj.head, 'HIT', reader);
    answer.headers['content-length'] = obj.bodyLength;
    return answer;
  }

  #startFill(key: string, request: ProxyRequest, ctx: MissContext, lock: Parameters<DiskTier['commit']>[0] | undefined): Fill {
    const hold = ctx.onFill?.();
    let slot = false;
    const fill = new Fill({
      key,
      request,
      memory: this.memory,
      ...(lock && this.disk ? { disk: { tier: this.disk, lock } } : {}),
      ttl: ctx.ttl,
      idleTimeoutMs: ctx.idleTimeoutMs,
      maxObjectBytes: ctx.maxObjectBytes,
      budget: this.#budget,
      upstreamLabel: ctx.upstreamLabel,
      warn: this.#warn,
      onDone: () => {
        if (this.#fills.get(key) === fill) this.#fills.delete(key);
        if (slot) this.#release();
        hold?.done();
      },
    });
    this.#fills.set(key, fill);
    // Joinable at once; a .zip's backend request waits for a slot (memory:
    // each body in flight holds socket and write buffers: bench/fill-memory.ts).
    // Small answers (.info, .mod, lists, sumdb) never queue behind large downloads.
    if (request.kind !== 'zip') return fill.start(ctx.fetch);
    return fill.start(async () => {
      await this.#acquire();
      slot = true;
      return ctx.fetch();
    });
  }

  async #fromFill(fill: Fill, stale: Lookup | undefined): Promise<Answer> {
    fill.join();
    // Joining a fill whose body is all stored (its commit under way) is a hit.
    const joinedComplete = fill.complete;
    let head: FillHead;
    try {
      head = await fill.head;
    } catch (err) {
      fill.reader().destroy();
      if (stale) return this.#counted({ ...Cache.fromObject(stale.object, 'STALE'), err: err as GprError, upstreamMs: fill.upstreamMs });
      throw err;
    }
    // A small body that was whole at the head comes as one buffer (one write to the client).
    const body = fill.take();
    const cache = head.cache === 'MISS' && joinedComplete ? 'HIT' : head.cache;
    // head.headers is shared by every reader of the fill: callers copy before changing it.
    const answer: Answer = { cache, status: head.status, headers: head.headers, etag: head.etag, body, upstreamMs: fill.upstreamMs };
    if (!Buffer.isBuffer(body)) answer.length = fill.length;
    return this.#counted(answer);
  }

  #counted(a: Answer): Answer {
    this.record(a.cache);
    return a;
  }

  /** Removes `module` (all versions, lists) or `module@version` from both tiers. */
  async purge(module: string, version?: string): Promise<ListedObject[]> {
    const match = keyMatcher(module, version);
    const removed: ListedObject[] = [];
    for (const key of this.memory.keys()) {
      if (!match(key)) continue;
      const bytes = this.memory.get(key)?.object.body.length ?? 0;
      this.memory.delete(key);
      removed.push({ key, tier: 'memory', bytes });
    }
    if (this.disk) for (const e of await this.disk.purge(match)) removed.push({ key: e.key, tier: 'disk', bytes: e.bytes });
    return removed;
  }

  /** Objects in both tiers (the disk part read from the directory). */
  async list(module?: string): Promise<ListedObject[]> {
    const match = module ? keyMatcher(module) : () => true;
    const out: ListedObject[] = [];
    for (const key of this.memory.keys()) if (match(key)) out.push({ key, tier: 'memory', bytes: this.memory.get(key)?.object.body.length ?? 0 });
    if (this.disk) for (const e of await this.disk.scan()) if (match(e.key)) out.push({ key: e.key, tier: 'disk', bytes: e.bytes });
    return out.sort((a, b) => a.key.localeCompare(b.key) || a.tier.localeCompare(b.tier));
  }

  stats(): Record<string, unknown> {
    return {
      memory: { entries: this.memory.entries, bytes: this.memory.sizeBytes, maxBytes: this.memory.maxBytes },
      disk: this.disk ? { dir: this.disk.dir, entries: this.disk.entries, bytes: this.disk.sizeBytes, maxBytes: this.disk.maxBytes } : null,
      fills: this.#fills.size,
      fillsQueued: this.#slots.queue.length,
      fillBytes: this.#budget.bytes,
      requests: { ...this.counts },
    };
  }

  /** Resolves when the fills under way now have committed or given up. */
  async idle(): Promise<void> {
    await Promise.all([...this.#fills.values()].map((f) => f.done));
  }

  close(): void {
    this.disk?.close();
  }
}

/** Case-encodes a module path or version as the go command does (`A` -> `!a`). */
export function escapeCase(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

/** Matches cache keys (`kind module [version]`) of `module`, or of `module@version`. */
export function keyMatcher(module: string, version?: string): (key: string) => boolean {
  const m = escapeCase(module);
  const v = version === undefined ? undefined : escapeCase(version);
  return (key) => {
    const [kind, km, kv] = key.split(' ');
    if (kind === 'sumdb' || km !== m) return false;
    return v === undefined || kv === v;
  };
}

function objectHeaders(object: CachedObject): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'content-type': object.contentType,
    'content-length': object.body.length,
    etag: object.etag,
    'cache-control': object.cacheControl,
  };
  if (object.lastModified) headers['last-modified'] = object.lastModified;
  if (object.contentEncoding) headers['content-encoding'] = object.contentEncoding;
  return headers;
}

/**
 * Reads a leased object's body into `buf` with one positional read. A hot
 * object (from the open-file cache: read recently, its pages most likely in
 * the page cache) is read synchronously: that copy cost less CPU per request
 * than a thread-pool round trip (README "The disk tier"). An object just
 * opened goes through the thread pool, so a cold read from the device does
 * not stop the event loop. The lease keeps the descriptor open meanwhile.
 */
function readBody(obj: ObjectLease, buf: Buffer): Promise<number> {
  const fd = obj.file.fd;
  if (!obj.hot) return new Promise((resolve, reject) => read(fd, buf, 0, obj.bodyLength, obj.bodyOffset, (err, n) => (err ? reject(err) : resolve(n))));
  try {
    return Promise.resolve(readSync(fd, buf, 0, obj.bodyLength, obj.bodyOffset));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

function fromHead(head: ObjectHead, cache: CacheStatus, body: Buffer | Readable): Answer {
  const headers: OutgoingHttpHeaders = { 'content-type': head.contentType, 'cache-control': head.cacheControl };
  if (head.etag) headers.etag = head.etag;
  if (head.lastModified) headers['last-modified'] = head.lastModified;
  if (head.contentEncoding) headers['content-encoding'] = head.contentEncoding;
  if (head.contentLength !== undefined) headers['content-length'] = head.contentLength;
  return { cache: head.store ? cache : 'BYPASS', status: head.status, headers, etag: head.etag || undefined, body };
}

/** The cache settings {@link openCache} takes (config `cache`). */
export interface OpenCacheOptions {
  maxBytes: number;
  maxEntryBytes: number;
  /** Disk tier directory; null or undefined: memory only. */
  dir?: string | null;
  diskMaxBytes: number;
  maxConcurrentFills?: number;
}

/**
 * Builds the cache: the memory tier and, with `dir`, the disk tier (its
 * directories created; the index runs in the background and `onIndexed`
 * gets its report).
 */
export async function openCache(
  opts: OpenCacheOptions,
  log: { warn(fields: Record<string, unknown>, msg: string): void; onIndexed?(report: IndexReport): void },
  now?: () => number,
): Promise<Cache> {
  const memory = new CacheStore({ maxBytes: opts.maxBytes, maxEntryBytes: opts.maxEntryBytes, ...(now ? { now } : {}) });
  let disk: DiskTier | undefined;
  if (opts.dir) {
    disk = new DiskTier({ dir: opts.dir, maxBytes: opts.diskMaxBytes, ...(now ? { now } : {}) });
    await disk.init();
    disk.indexed.then(
      (report) => log.onIndexed?.(report),
      (err: Error) => log.warn({ dir: opts.dir, err: err.message }, 'cache index failed'),
    );
  }
  return new Cache({ memory, ...(disk ? { disk } : {}), ...(opts.maxConcurrentFills ? { maxConcurrentFills: opts.maxConcurrentFills } : {}), warn: (fields, msg) => log.warn(fields, msg) });
}
