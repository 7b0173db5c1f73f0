/**
 * @module cache/fill
 * One backend fill: reads an abstract body source at backend speed into a
 * spool (a file in the disk tier, or memory without one), and lets every
 * reader (the request that started it and each joiner) stream the spooled
 * bytes at its own pace. Decides what is stored: only an answer whose framing
 * proved it whole (Content-Length matched, or a chunked terminator: the
 * source ends cleanly only then), allowed by its headers, and, for immutable
 * objects, with a valid body. A broken fill errors every reader's stream
 * (the handler cuts the connection) and commits nothing.
 * Must not: import upstream/ (the handler connects the source), write
 * response heads, or outlive its source plus the commit.
 *
 * API:
 *   new Fill(opts).start(() => Promise<BodySource>)
 *   fill.head: Promise<FillHead>     rejects with a GprError before any head
 *   fill.reader(): Readable          the body from byte 0, at the caller's pace
 *   fill.take(): Buffer | Readable   the whole body as one buffer when it was complete at the head, else reader()
 *   fill.joinable                    false once new requests must not join
 *   fill.done: Promise<void>         settles after commit or discard
 *
 * Memory: a disk fill holds at most SPOOL_HIGH_WATER_BYTES of unwritten
 * chunks (it pauses the source above that, resumes below a quarter), plus a
 * copy of a body up to SMALL_OBJECT_BYTES for the memory tier. A memory fill
 * keeps the body while it fits `maxEntryBytes`; beyond that it stops being
 * joinable and streams through with backpressure (the slowest reader paces
 * the backend), keeping only what some reader has not read. Copies and
 * memory spools of all fills together stay within a shared budget
 * (`cache.maxBytes`).
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { gprError, type GprError } from '../errors.js';
import type { ProxyRequest } from '../goproxy/path.js';
import { DiskTier, encodeHeader, FileBodyReader, FIXED_BYTES, SpoolState, type FillLock, type FillProgress, type ObjectHead } from './disk.js';
import { bodyEtag, cacheControl, freshness, invalidImmutable, keyEtag, MAX_INFO_BYTES, NO_STORE, unstorableReason, validationBytes, type Freshness } from './http.js';
import type { CacheStore } from './store.js';
import { isBackendFailure } from '../status.js';

/**
 * The backend answer a fill consumes. The upstream's response satisfies it
 * structurally: cache/ never imports upstream/.
 */
export interface BodySource {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body; 'end' only when its framing proved it complete. */
  readonly body: Readable;
  /** Destroys the connection (the body stops). */
  abort(err?: Error): void;
}

/** What every reader of a fill answers with. */
export interface FillHead {
  status: number;
  /** Response headers (no X-Cache). */
  headers: OutgoingHttpHeaders;
  /** MISS: the object will be stored; BYPASS: it is only passed through. */
  cache: 'MISS' | 'BYPASS';
  etag: string | undefined;
}

export interface FillOptions {
  key: string;
  request: ProxyRequest;
  memory: CacheStore;
  /** A disk fill: the tier and the lock this process won for `key`. */
  disk?: { tier: DiskTier; lock: FillLock };
  ttl: { mutableTtlMs: number; notFoundTtlMs: number };
  /** Longest wait for the next body chunk from the backend, ms. */
  idleTimeoutMs: number;
  /** Largest object stored on disk. */
  maxObjectBytes: number;
  /**
   * Bytes all fills of the process hold in memory (body copies, memory
   * spools), shared and bounded: a fill that would exceed it drops its copy
   * (memory only: streams through uncached).
   */
  budget: { bytes: number; readonly maxBytes: number };
  /** The backend, for messages. */
  upstreamLabel: string;
  /** Logs a warning (invalid backend answers). */
  warn(fields: Record<string, unknown>, msg: string): void;
  /** Called once when the fill is over (committed, discarded or failed). */
  onDone?: () => void;
}

/** With a disk tier, bodies up to this size are also copied into the memory tier as they fill. */
export const SMALL_OBJECT_BYTES = 2 * 1024 * 1024;
/** Largest body held back to compute an ETag before the head (answers without one are larger: not stored). */
const MAX_ETAG_HOLD_BYTES = 4 * 1024 * 1024;
/** Stored bodies up to this Content-Length are held until complete and answered as one buffer. */
export const WHOLE_BODY_BYTES = 64 * 1024;
/** Unwritten disk chunks above which the source is paused. */
export const SPOOL_HIGH_WATER_BYTES = 128 * 1024;
/** Chunks of unread lag, in pass-through mode, above which the source is paused. */
const PASS_THROUGH_LAG_CHUNKS = 16;

const DEFAULT_CONTENT_TYPE: Record<string, string> = {
  list: 'text/plain; charset=utf-8',
  latest: 'application/json',
  info: 'application/json',
  mod: 'text/plain; charset=utf-8',
  zip: 'application/zip',
  sumdb: 'application/octet-stream',
};

export class Fill {
  readonly #o: FillOptions;
  readonly head: Promise<FillHead>;
  readonly done: Promise<void>;
  /** The body length once the body is complete; rejects when the fill breaks off. */
  readonly length: Promise<number>;
  #resolveLength!: (n: number) => void;
  #rejectLength!: (e: Error) => void;
  #resolveHead!: (h: FillHead) => void;
  #rejectHead!: (e: GprError) => void;
  #resolveDone!: () => void;
  #source: BodySource | undefined;
  #fresh: Freshness | undefined;
  #head: FillHead | undefined;
  #stored: ObjectHead | undefined;
  #headLength = 0;
  /** Chunks held back until the store decision (validation, body ETag). */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  #holdBytes = 0;
  /** Body copy for the memory tier while it fits (charged to the shared budget). */
  #copy: Buffer[] | null = [];
  #charged = 0;
  #bytes = 0;
  #contentLength: number | undefined;
  #ended = false;
  #sourceError: Error | undefined;
  #over = false;
  #failure: GprError | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** When the backend last sent something (performance.now()): the idle timer checks it instead of being re-armed per chunk. */
  #lastDataMs = 0;
  /**
   * The whole body, when it was held until the source ended (a small
   * `.info`, `.mod`, list, or a body hashed for its ETag): known complete and
   * valid when the head resolves, so readers can take it as one buffer.
   */
  #whole: Buffer | undefined;
  #joinable = true;
  // Disk spool
  #written = 0;
  #pending = 0;
  #writes: Promise<void> = Promise.resolve();
  #fileRefs = 1;
  // Memory spool
  readonly #mem = { chunks: [] as Buffer[], dropped: 0, retain: true, readers: new Set<MemoryBodyReader>() };
  #total: number | undefined;
  #waiters: Array<() => void> = [];
  #paused = false;
  /** Requests that joined and will call reader(): nothing is trimmed before they attach. */
  #reserved = 0;

  /** Time to the response head, ms. */
  upstreamMs: number | undefined;

  constructor(opts: FillOptions) {
    this.#o = opts;
    this.head = new Promise((resolve, reject) => {
      this.#resolveHead = resolve;
      this.#rejectHead = reject;
    });
    this.head.catch(() => {});
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.length = new Promise((resolve, reject) => {
      this.#resolveLength = resolve;
      this.#rejectLength = reject;
    });
    this.length.catch(() => {});
  }

  /** The whole body is in the spool (the commit may still be under way). */
  get complete(): boolean {
    return this.#total !== undefined && !this.#failure;
  }

  /** New requests for the key may join (false after a pass-through switch or the end). */
  get joinable(): boolean {
    return this.#joinable;
  }

  start(fetch: () => Promise<BodySource>): this {
    const started = performance.now();
    fetch().then(
      (res) => {
        this.upstreamMs = performance.now() - started;
        this.#onResponse(res);
      },
      (err: GprError) => {
        this.upstreamMs = performance.now() - started;
        void this.#fail(err);
      },
    );
    return this;
  }

  /** Announces a request that will call reader() once the head is known. */
  join(): void {
    this.#reserved++;
  }

  /**
   * The body as one buffer when it was whole and proven complete before the
   * head (the small-body fast path: no stream, one write to the client),
   * else {@link reader}. Consumes one join(). Call after `head` resolved.
   */
  take(): Buffer | Readable {
    const whole = this.#whole;
    if (whole === undefined || this.#failure) return this.reader();
    this.#reserved = Math.max(0, this.#reserved - 1);
    return whole;
  }

  /** The body from the first byte, at the caller's pace; consumes one join(). Call after `head` resolved. */
  reader(): Readable {
    this.#reserved = Math.max(0, this.#reserved - 1);
    const disk = this.#o.disk;
    if (disk) {
      this.#fileRefs++;
      const progress: FillProgress = {
        available: () => this.#written,
        total: () => this.#total,
        error: () => this.#failure,
        wait: (cb) => this.#waiters.push(cb),
      };
      return new FileBodyReader(disk.lock.file, FIXED_BYTES + this.#headLength, progress, () => this.#unrefFile());
    }
    const r = new MemoryBodyReader(this);
    this.#mem.readers.add(r);
    return r;
  }

  #onResponse(res: BodySource): void {
    this.#source = res;
    const o = this.#o;
    const { status, headers } = res;
    if (isBackendFailure(status)) {
      res.body.resume();
      return void this.#fail(gprError('GPR_ERR_UPSTREAM_STATUS', [o.upstreamLabel, status]));
    }
    const cl = headers['content-length'];
    this.#contentLength = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : undefined;
    // With a disk tier only small bodies are copied for the memory tier: an
    // announced larger length never is (copying its first 2 MiB anyway held
    // up to cache.maxBytes across concurrent cold fills: bench/fill-memory.ts).
    if (o.disk && this.#contentLength !== undefined && this.#contentLength > Math.min(o.memory.maxEntryBytes, SMALL_OBJECT_BYTES)) this.#copy = null;
    const framed = this.#contentLength !== undefined || /chunked/i.test(String(headers['transfer-encoding'] ?? ''));
    const fresh = freshness(o.request, status, o.ttl);
    const unstorable = unstorableReason(headers);
    const limit = fresh?.immutable && o.disk ? o.maxObjectBytes : o.memory.maxEntryBytes;
    let store = fresh !== undefined && !unstorable && !((this.#contentLength ?? 0) > limit);
    // A body that ends at the connection's close may have been cut: never immutable.
    if (store && fresh?.immutable && !framed) {
      store = false;
      o.warn({ backend: o.upstreamLabel, key: o.key, reason: 'close-delimited body' }, 'backend answer not stored');
    }
    this.#fresh = store ? fresh : undefined;
    if (store && fresh?.immutable && status === 200) this.#holdBytes = Math.min(validationBytes(o.request.kind), MAX_INFO_BYTES + 1);
    else if (store && typeof headers.etag !== 'string') this.#holdBytes = Math.min(o.memory.maxEntryBytes, MAX_ETAG_HOLD_BYTES) + 1;
    // A small stored body of known length is held to its end: every reader
    // then takes it as one buffer (take()), written with its head at once.
    if (store && this.#contentLength !== undefined && this.#contentLength <= WHOLE_BODY_BYTES) this.#holdBytes = Math.max(this.#holdBytes, this.#contentLength + 1);
    if (this.#holdBytes > 0) this.#held = [];
    else this.#decide(undefined);

    if (!framed) {
      // Node's HTTP client ends a close-delimited body at a reset as if at a
      // FIN; only its socket's 'error' (emitted before that 'end') tells them apart.
      const socket = (res.body as Readable & { socket?: { once(e: 'error', l: (err: Error) => void): unknown } }).socket;
      socket?.once('error', (err) => {
        if (!this.#ended) this.#sourceError = err;
      });
    }
    res.body.on('data', (chunk: Buffer) => this.#onData(chunk));
    res.body.on('end', () => void this.#onEnd());
    res.body.on('close', () => {
      if (!this.#ended) this.#broken(gprError('GPR_ERR_UPSTREAM_BODY', [o.upstreamLabel, 'connection closed before the body was complete']));
    });
    res.body.on('error', () => {
      /* reported by 'close' */
    });
    this.#lastDataMs = performance.now();
    this.#armIdleTimer();
  }

  /** Builds and emits the head; `body` is the held prefix (or whole body when complete). */
  #decide(held: { body: Buffer; complete: boolean } | undefined): void {
    const o = this.#o;
    const res = this.#source as BodySource;
    const { status, headers } = res;
    let fresh = this.#fresh;
    let etag = typeof headers.etag === 'string' ? headers.etag : undefined;
    if (fresh && held) {
      if (fresh.immutable && status === 200) {
        const reason = invalidImmutable(o.request.kind, held.body, held.complete);
        if (reason) {
          o.warn({ backend: o.upstreamLabel, key: o.key, reason }, 'backend answer not stored');
          fresh = undefined;
        }
      } else if (!etag) {
        if (held.complete) etag = bodyEtag(held.body);
        else fresh = undefined; // too large to hash before the head
      }
    }
    if (fresh?.immutable && !etag) etag = keyEtag(o.key);
    this.#fresh = fresh;
    const out: OutgoingHttpHeaders = {
      'content-type': headers['content-type'] ?? DEFAULT_CONTENT_TYPE[o.request.kind],
      'cache-control': fresh ? cacheControl(fresh) : NO_STORE,
    };
    if (etag) out.etag = etag;
    if (typeof headers['last-modified'] === 'string') out['last-modified'] = headers['last-modified'];
    if (typeof headers['content-encoding'] === 'string') out['content-encoding'] = headers['content-encoding'];
    const length = held?.complete ? held.body.length : this.#contentLength;
    if (length !== undefined) out['content-length'] = length;
    // A redirect is useless without its target (Athens' redirect mode, presigned links); never stored.
    if (status >= 300 && status < 400 && typeof headers.location === 'string') out.location = headers.location;
    this.#head = { status, headers: out, cache: fresh ? 'MISS' : 'BYPASS', etag };
    this.#stored = {
      key: o.key,
      status,
      contentType: String(out['content-type']),
      ...(out['content-encoding'] ? { contentEncoding: String(out['content-encoding']) } : {}),
      etag: etag ?? '',
      ...(out['last-modified'] ? { lastModified: String(out['last-modified']) } : {}),
      cacheControl: String(out['cache-control']),
      ...(length !== undefined ? { contentLength: length } : {}),
      store: fresh !== undefined,
    };
    if (o.disk) {
      const header = encodeHeader(this.#stored, SpoolState.Filling);
      this.#headLength = header.length - FIXED_BYTES;
      this.#queueWrite(header, 0, false);
    }
    // An answer that is not stored is not shared with later requests either
    // (it may be private): they fetch their own.
    if (!fresh) this.#joinable = false;
    this.#resolveHead(this.#head);
    if (!o.disk && !fresh) this.#passThrough();
  }

  #onData(chunk: Buffer): void {
    this.#lastDataMs = performance.now();
    if (this.#over) return;
    this.#bytes += chunk.length;
    const limit = this.#o.disk ? this.#o.maxObjectBytes : Infinity;
    if (this.#bytes > limit) {
      const err = gprError('GPR_ERR_UPSTREAM_BODY', [this.#o.upstreamLabel, `body larger than cache.maxObjectBytes (${this.#o.maxObjectBytes})`]);
      this.#source?.abort(err);
      return this.#broken(err);
    }
    if (this.#held) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes < this.#holdBytes) return;
      const held = this.#held;
      this.#held = null;
      this.#decide({ body: Buffer.concat(held), complete: false });
      for (const c of held) this.#append(c);
      return;
    }
    this.#append(chunk);
  }

  #append(chunk: Buffer): void {
    if (this.#copy) {
      const o = this.#o;
      const limit = o.disk ? Math.min(o.memory.maxEntryBytes, SMALL_OBJECT_BYTES) : o.memory.maxEntryBytes;
      if (this.#bytes <= limit && this.#charge(chunk.length)) this.#copy.push(chunk);
      else this.#dropCopy();
    }
    if (this.#o.disk) {
      this.#queueWrite(chunk, FIXED_BYTES + this.#headLength + this.#written + this.#pending, true);
      return;
    }
    this.#mem.chunks.push(chunk);
    if (this.#mem.retain && !this.#copy) {
      // Too large for memory (the entry cap, or the budget all fills share): not stored; streamed through.
      this.#fresh = undefined;
      this.#passThrough();
    }
    this.#notify();
    this.#trim();
    this.#checkLag();
  }

  /** Sequential positional writes; `body` writes count toward what readers may read. */
  #queueWrite(buf: Buffer, position: number, body: boolean): void {
    const file = (this.#o.disk as { lock: FillLock }).lock.file;
    if (body) this.#pending += buf.length;
    this.#writes = this.#writes.then(async () => {
      if (this.#failure) return;
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await file.write(buf, off, buf.length - off, position + off);
        off += bytesWritten;
      }
      if (body) {
        this.#pending -= buf.length;
        this.#written += buf.length;
        this.#notify();
        if (this.#paused && this.#pending < SPOOL_HIGH_WATER_BYTES / 4) this.#resume();
      }
    });
    this.#writes.catch((err: Error) => this.#broken(gprError('GPR_ERR_INTERNAL', [`cache write failed: ${err.message}`], err)));
    if (body && this.#pending > SPOOL_HIGH_WATER_BYTES && !this.#paused) this.#pause();
  }

  #pause(): void {
    this.#paused = true;
    this.#source?.body.pause();
  }
  #resume(): void {
    this.#paused = false;
    this.#source?.body.resume();
  }

  async #onEnd(): Promise<void> {
    if (this.#over) return;
    this.#ended = true;
    clearTimeout(this.#idleTimer);
    const o = this.#o;
    if (this.#sourceError) {
      return this.#broken(gprError('GPR_ERR_UPSTREAM_BODY', [o.upstreamLabel, this.#sourceError.message]));
    }
    if (this.#contentLength !== undefined && this.#bytes !== this.#contentLength) {
      return this.#broken(gprError('GPR_ERR_UPSTREAM_BODY', [o.upstreamLabel, `${this.#bytes} of ${this.#contentLength} bytes`]));
    }
    if (this.#held) {
      const held = this.#held;
      this.#held = null;
      // One copy serves validation, the ETag, readers (take()) and the memory tier.
      this.#whole = Buffer.concat(held, this.#heldBytes);
      this.#decide({ body: this.#whole, complete: true });
      for (const c of held) this.#append(c);
    }
    try {
      await this.#writes;
    } catch {
      return; // #broken already ran
    }
    if (this.#failure) return;
    this.#over = true;
    const stored = this.#stored as ObjectHead;
    const fresh = this.#fresh;
    const copy = this.#copy ?? (this.#o.disk ? null : this.#mem.retain ? this.#mem.chunks : null);
    // The memory tier first: a request right after this one's end is a HIT
    // at once, while the disk commit (sync, rename) is still under way.
    if (fresh && copy) {
      const body = this.#whole ?? Buffer.concat(copy, this.#bytes);
      o.memory.set(o.key, {
        status: stored.status,
        contentType: stored.contentType,
        etag: stored.etag || bodyEtag(body),
        ...(stored.lastModified ? { lastModified: stored.lastModified } : {}),
        ...(stored.contentEncoding ? { contentEncoding: stored.contentEncoding } : {}),
        body,
        expiresAtMs: o.memory.now() + fresh.ttlMs,
        cacheControl: stored.cacheControl,
      });
    }
    this.#total = this.#bytes;
    this.#resolveLength(this.#bytes);
    this.#notify();
    try {
      if (o.disk) {
        if (fresh?.immutable && stored.status === 200) await o.disk.tier.commit(o.disk.lock, this.#headLength, this.#bytes);
        else await o.disk.tier.discard(o.disk.lock, this.#headLength, this.#bytes);
      }
    } catch (err) {
      o.warn({ key: o.key, err: (err as Error).message }, 'cache commit failed');
    }
    this.#finish();
  }

  #broken(err: GprError): void {
    if (this.#over) return;
    if (!this.#head) return void this.#fail(err);
    this.#over = true;
    this.#joinable = false;
    this.#failure = err;
    this.#rejectLength(err);
    this.#source?.abort(err);
    this.#notify();
    const disk = this.#o.disk;
    if (disk) void disk.tier.discard(disk.lock, this.#headLength, this.#written, SpoolState.Failed).finally(() => this.#finish());
    else this.#finish();
  }

  async #fail(err: GprError): Promise<void> {
    if (this.#over) return;
    this.#over = true;
    this.#joinable = false;
    this.#failure = err;
    this.#rejectHead(err);
    this.#rejectLength(err);
    const disk = this.#o.disk;
    if (disk) {
      // Readers in other processes see the failure in the header before the spool goes.
      await disk.lock.file.write(Buffer.from([SpoolState.Failed]), 0, 1, 8).catch(() => {});
      await disk.tier.discard(disk.lock, 0, 0, SpoolState.Failed);
    }
    this.#finish();
  }

  #finish(): void {
    clearTimeout(this.#idleTimer);
    this.#joinable = false;
    this.#dropCopy();
    this.#unrefFile();
    this.#o.onDone?.();
    this.#resolveDone();
  }

  #unrefFile(): void {
    if (--this.#fileRefs === 0) void this.#o.disk?.lock.file.close().catch(() => {});
  }

  /**
   * One timer per fill, not one per chunk: when it fires it looks at when
   * the last chunk came and waits out the rest of the idle time from there.
   */
  #armIdleTimer(delayMs = this.#o.idleTimeoutMs): void {
    this.#idleTimer = setTimeout(() => {
      if (this.#over) return;
      const idleMs = performance.now() - this.#lastDataMs;
      if (idleMs < this.#o.idleTimeoutMs) return this.#armIdleTimer(Math.ceil(this.#o.idleTimeoutMs - idleMs));
      const err = gprError('GPR_ERR_UPSTREAM_TIMEOUT', [this.#o.upstreamLabel, this.#o.idleTimeoutMs]);
      this.#source?.abort(err);
      this.#broken(err);
    }, delayMs);
    this.#idleTimer.unref();
  }

  #notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const cb of w) cb();
  }

  // Memory spool: pass-through mode and the readers' view of it.

  /** Takes `n` bytes of the memory budget all fills share; false when it is spent. */
  #charge(n: number): boolean {
    const budget = this.#o.budget;
    if (budget.bytes + n > budget.maxBytes) return false;
    budget.bytes += n;
    this.#charged += n;
    return true;
  }

  #dropCopy(): void {
    this.#copy = null;
    this.#o.budget.bytes -= this.#charged;
    this.#charged = 0;
  }

  #passThrough(): void {
    this.#joinable = false;
    this.#mem.retain = false;
    this.#dropCopy();
    this.#trim();
    // Streamed through to nobody (HEAD, abandoned): stop the backend.
    if (this.#mem.readers.size === 0 && this.#reserved === 0 && this.#head && !this.#over) this.#source?.abort(gprError('GPR_ERR_CLIENT_GONE'));
  }

  #trim(): void {
    const m = this.#mem;
    if (m.retain || this.#reserved > 0) return;
    let min = m.dropped + m.chunks.length;
    for (const r of m.readers) min = Math.min(min, r.next);
    if (min > m.dropped) {
      m.chunks.splice(0, min - m.dropped);
      m.dropped = min;
    }
  }

  #checkLag(): void {
    const m = this.#mem;
    if (m.retain || this.#over || this.#reserved > 0) return;
    const lag = m.dropped + m.chunks.length - Math.min(...[...m.readers].map((r) => r.next), m.dropped + m.chunks.length);
    if (lag > PASS_THROUGH_LAG_CHUNKS && !this.#paused) this.#pause();
    else if (lag <= PASS_THROUGH_LAG_CHUNKS / 2 && this.#paused) this.#resume();
  }

  /** @internal MemoryBodyReader's view. */
  memChunk(index: number): Buffer | undefined {
    return this.#mem.chunks[index - this.#mem.dropped];
  }
  /** @internal */
  memState(): { end: number; total: number | undefined; failure: Error | undefined } {
    return { end: this.#mem.dropped + this.#mem.chunks.length, total: this.#total, failure: this.#failure };
  }
  /** @internal */
  memWait(cb: () => void): void {
    this.#waiters.push(cb);
  }
  /** @internal A reader advanced or left. */
  memAdvanced(reader: MemoryBodyReader, left: boolean): void {
    const m = this.#mem;
    if (left) m.readers.delete(reader);
    this.#trim();
    this.#checkLag();
    // Nobody wants a pass-through body any more: stop the backend.
    if (left && !m.retain && m.readers.size === 0 && this.#reserved === 0 && !this.#over) this.#source?.abort(gprError('GPR_ERR_CLIENT_GONE'));
  }
}

/** A reader of a memory spool. */
class MemoryBodyReader extends Readable {
  readonly #fill: Fill;
  next = 0;
  #waiting = false;

  constructor(fill: Fill) {
    super({ highWaterMark: 256 * 1024 });
    this.#fill = fill;
  }

  override _read(): void {
    if (this.#waiting) return;
    for (;;) {
      const s = this.#fill.memState();
      if (this.next < s.end) {
        const chunk = this.#fill.memChunk(this.next++) as Buffer;
        this.#fill.memAdvanced(this, false);
        if (!this.push(chunk)) return;
        continue;
      }
      if (s.total !== undefined) return void this.push(null);
      if (s.failure) return void this.destroy(s.failure);
      this.#waiting = true;
      this.#fill.memWait(() => {
        this.#waiting = false;
        if (!this.destroyed) this._read();
      });
      return;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#fill.memAdvanced(this, true);
    cb(err);
  }
}
