/**
 * @module cache/flight
 * One backend fetch shared by every client that misses the same object while
 * it is under way (single-flight, like undici's deduplicate interceptor), but
 * streaming: each waiter gets the head as soon as it is known and the body
 * chunks as they arrive, replayed from the start for late joiners. At the end
 * a cacheable body is stored. The slowest waiter sets the pace (backpressure).
 * Must not: write response heads itself (waiters do), or outlive its fetch.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { gprError, type GprError } from '../errors.js';
import type { ProxyRequest } from '../goproxy/path.js';
import type { UpstreamResponse } from '../upstream/forward.js';
import { bodyEtag, cacheControl, freshness, keyEtag, NO_STORE, type Freshness } from './http.js';
import type { CacheStore } from './store.js';

/** What the waiters answer with. */
export interface FlightHead {
  status: number;
  headers: OutgoingHttpHeaders;
  /** The body will be stored (X-Cache MISS) or not (BYPASS). */
  cacheable: boolean;
  etag: string | undefined;
}

/** Where a waiter's body goes: a ServerResponse satisfies it. */
export interface BodySink {
  write(chunk: Buffer): boolean;
  once(event: 'drain', listener: () => void): unknown;
  removeListener(event: 'drain', listener: () => void): unknown;
  end(): unknown;
}

/** A client waiting on the flight. */
export interface FlightWaiter {
  /** The head is known: return where the body goes, or null to take no body (HEAD, 304). */
  onHead(head: FlightHead): BodySink | null;
  /** The fetch failed before the head: nothing was sent yet. */
  onError(err: GprError): void;
  /** The body broke off after the head was sent. */
  onAbort(err: GprError): void;
  /** The body is complete. */
  onEnd(): void;
}

export interface FlightOptions {
  key: string;
  request: ProxyRequest;
  store: CacheStore;
  ttl: { mutableTtlMs: number; notFoundTtlMs: number };
  /** Longest pause between body chunks, ms. */
  idleTimeoutMs: number;
  /** For messages: the backend label. */
  upstreamLabel: string;
  /** Called once when the fetch is over (stored, failed or broken off). */
  onDone?: () => void;
}

const DEFAULT_CONTENT_TYPE: Record<string, string> = {
  list: 'text/plain; charset=utf-8',
  latest: 'application/json',
  info: 'application/json',
  mod: 'text/plain; charset=utf-8',
  zip: 'application/zip',
  sumdb: 'application/octet-stream',
};

export class Flight {
  readonly #opts: FlightOptions;
  readonly #waiters = new Map<FlightWaiter, BodySink | null>();
  readonly #blocked = new Set<BodySink>();
  #head: FlightHead | undefined;
  /** A head held back until the body hash gives its ETag. */
  #pendingHead: FlightHead | undefined;
  #fresh: Freshness | undefined;
  #response: UpstreamResponse | undefined;
  /** Body so far, kept while the object may still be stored or a late joiner replayed. */
  #chunks: Buffer[] | null = [];
  #bytes = 0;
  #done = false;
  #finished = false;
  #idleTimer: NodeJS.Timeout | undefined;

  /** Time to the response head, for the access log. */
  upstreamMs: number | undefined;

  constructor(opts: FlightOptions) {
    this.#opts = opts;
  }

  /** Starts the fetch; registers the flight so concurrent misses join it. */
  start(fetch: () => Promise<UpstreamResponse>): this {
    this.#opts.store.flights.set(this.#opts.key, this);
    const started = performance.now();
    fetch().then(
      (res) => {
        this.upstreamMs = performance.now() - started;
        this.#onResponse(res);
      },
      (err: GprError) => {
        this.upstreamMs = performance.now() - started;
        this.#fail(err);
      },
    );
    return this;
  }

  /** Adds a waiter; it gets the head (and replayed body) at once if known. */
  join(waiter: FlightWaiter): void {
    this.#waiters.set(waiter, null);
    if (this.#head) this.#deliverHead(waiter, this.#chunks ?? []);
  }

  /** Removes a waiter whose client went away; a fetch no one wants any more is stopped. */
  leave(waiter: FlightWaiter): void {
    const sink = this.#waiters.get(waiter);
    this.#waiters.delete(waiter);
    if (sink) this.#unblock(sink);
    if (this.#waiters.size === 0 && this.#chunks === null && !this.#done) {
      this.#response?.abort(gprError('GPR_ERR_CLIENT_GONE'));
    }
  }

  #onResponse(res: UpstreamResponse): void {
    this.#response = res;
    const { status, headers } = res;
    if (status >= 500 || status === 429) {
      res.body.resume();
      return this.#fail(gprError('GPR_ERR_UPSTREAM_STATUS', [this.#opts.upstreamLabel, status]));
    }
    this.#fresh = freshness(this.#opts.request, status, this.#opts.ttl);
    const length = Number(headers['content-length'] ?? NaN);
    const cacheable = this.#fresh !== undefined && !(length > this.#opts.store.maxEntryBytes);
    if (!cacheable) this.#stopCollecting();
    const etag = typeof headers.etag === 'string' ? headers.etag : this.#fresh?.immutable ? keyEtag(this.#opts.key) : undefined;
    const out: OutgoingHttpHeaders = {
      'content-type': headers['content-type'] ?? DEFAULT_CONTENT_TYPE[this.#opts.request.kind],
      'cache-control': this.#fresh ? cacheControl(this.#fresh) : NO_STORE,
    };
    if (etag) out.etag = etag;
    if (headers['last-modified']) out['last-modified'] = headers['last-modified'];
    if (Number.isFinite(length) && !headers['content-encoding']) out['content-length'] = length;
    if (headers['content-encoding']) out['content-encoding'] = headers['content-encoding'];
    const head: FlightHead = { status, headers: out, cacheable, etag };
    // Without a validator the ETag is the body hash: hold the head until the
    // end. Only mutable answers (list, @latest, query .info, 404) get here, and
    // they are small.
    if (etag || !cacheable) this.#emitHead(head);
    else this.#pendingHead = head;

    res.body.on('data', (chunk: Buffer) => this.#onData(chunk));
    res.body.on('end', () => this.#onEnd());
    res.body.on('close', () => {
      if (!this.#done) this.#broken(gprError('GPR_ERR_UPSTREAM_BODY', [this.#opts.upstreamLabel, 'connection closed']));
    });
    res.body.on('error', () => {
      /* reported by 'close' */
    });
    this.#armIdleTimer();
  }

  #onData(chunk: Buffer): void {
    this.#armIdleTimer();
    if (this.#chunks) {
      this.#chunks.push(chunk);
      this.#bytes += chunk.length;
      if (this.#bytes > this.#opts.store.maxEntryBytes) {
        const pending = this.#pendingHead;
        this.#pendingHead = undefined;
        if (pending) this.#emitHead({ ...pending, cacheable: false }); // replays this chunk too
        this.#stopCollecting();
        if (pending) return;
      }
    }
    if (this.#head) this.#write(chunk);
  }

  #onEnd(): void {
    this.#done = true;
    clearTimeout(this.#idleTimer);
    if (this.#chunks && this.#fresh) {
      const body = Buffer.concat(this.#chunks, this.#bytes);
      const head = this.#head ?? this.#pendingHead;
      if (head) {
        const etag = head.etag ?? bodyEtag(body);
        this.#opts.store.set(this.#opts.key, {
          status: head.status,
          contentType: String(head.headers['content-type']),
          etag,
          lastModified: head.headers['last-modified'] as string | undefined,
          body,
          expiresAtMs: this.#opts.store.now() + this.#fresh.ttlMs,
          cacheControl: String(head.headers['cache-control']),
        });
        if (this.#pendingHead) {
          this.#pendingHead = undefined;
          this.#emitHead({ ...head, etag, headers: { ...head.headers, etag, 'content-length': body.length } });
        }
      }
    }
    this.#finish();
    for (const [waiter, sink] of this.#waiters) {
      sink?.end();
      waiter.onEnd();
    }
    this.#waiters.clear();
  }

  #emitHead(head: FlightHead): void {
    this.#head = head;
    const replay = this.#chunks ?? [];
    for (const waiter of [...this.#waiters.keys()]) this.#deliverHead(waiter, replay);
  }

  #deliverHead(waiter: FlightWaiter, replay: Buffer[]): void {
    const head = this.#head as FlightHead;
    const sink = waiter.onHead(head);
    if (!sink) {
      this.#waiters.delete(waiter);
      return;
    }
    this.#waiters.set(waiter, sink);
    for (const chunk of replay) this.#writeTo(sink, chunk);
    if (this.#done) {
      this.#waiters.delete(waiter);
      sink.end();
      waiter.onEnd();
    }
  }

  #write(chunk: Buffer): void {
    for (const sink of this.#waiters.values()) if (sink) this.#writeTo(sink, chunk);
  }

  #writeTo(sink: BodySink, chunk: Buffer): void {
    if (sink.write(chunk) || this.#blocked.has(sink) || this.#done) return;
    this.#blocked.add(sink);
    this.#response?.body.pause();
    sink.once('drain', () => this.#unblock(sink));
  }

  #unblock(sink: BodySink): void {
    if (!this.#blocked.delete(sink)) return;
    if (this.#blocked.size === 0) this.#response?.body.resume();
  }

  /** The object will not be stored: free the buffer and let new misses start their own fetch. */
  #stopCollecting(): void {
    this.#chunks = null;
    if (this.#opts.store.flights.get(this.#opts.key) === this) this.#opts.store.flights.delete(this.#opts.key);
  }

  #armIdleTimer(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      const err = gprError('GPR_ERR_UPSTREAM_TIMEOUT', [this.#opts.upstreamLabel, this.#opts.idleTimeoutMs]);
      this.#response?.abort(err);
      this.#broken(err);
    }, this.#opts.idleTimeoutMs);
    this.#idleTimer.unref();
  }

  #broken(err: GprError): void {
    if (this.#done) return;
    if (!this.#head) return this.#fail(err);
    this.#done = true;
    this.#finish();
    for (const waiter of this.#waiters.keys()) waiter.onAbort(err);
    this.#waiters.clear();
  }

  #fail(err: GprError): void {
    this.#done = true;
    this.#finish();
    for (const waiter of this.#waiters.keys()) waiter.onError(err);
    this.#waiters.clear();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#opts.onDone?.();
    clearTimeout(this.#idleTimer);
    this.#chunks = null;
    this.#blocked.clear();
    if (this.#opts.store.flights.get(this.#opts.key) === this) this.#opts.store.flights.delete(this.#opts.key);
  }
}
