/**
 * @module runtime
 * A runtime is everything a request needs that a config reload may change:
 * the config, the rewrite rules, the backend client and the TLS material. A
 * request takes one snapshot and keeps it to the end; a reload builds a whole
 * new runtime, swaps it in, and the old one is closed once its last request
 * is done (caddy's unsyncedDecodeAndRun).
 * Must not: hold the cache (it outlives runtimes) or sockets.
 */
import type { Config } from './config/schema.js';
import { compileRewriter, type Rewriter } from './rewrite/rules.js';
import { createUpstream, type Upstream } from './upstream/forward.js';
import type { TlsMaterial } from './tls/material.js';

export interface Runtime {
  readonly generation: number;
  readonly config: Config;
  readonly rewrite: Rewriter;
  readonly upstream: Upstream;
  /** Certificates for the HTTPS listener; undefined when it is off. */
  readonly tls: TlsMaterial | undefined;
}

/** Builds a runtime; throws (and leaves nothing open) if any part fails. */
export function buildRuntime(config: Config, generation: number, tls: TlsMaterial | undefined): Runtime {
  const rewrite = compileRewriter(config.rewrite, config.upstream);
  const upstream = createUpstream({ url: config.upstream, connectMs: config.timeouts.connectMs, responseMs: config.timeouts.responseMs });
  return { generation, config, rewrite, upstream, tls };
}

/** The current runtime, with per-runtime request counts so a retired one closes when idle. */
export class RuntimeRef {
  #current: Runtime;
  readonly #active = new Map<Runtime, number>();
  readonly #retired = new Set<Runtime>();
  #requests = 0;

  constructor(initial: Runtime) {
    this.#current = initial;
  }

  get current(): Runtime {
    return this.#current;
  }

  /** The runtime a new request uses until it ends. */
  acquire(): Runtime {
    const rt = this.#current;
    this.#requests++;
    this.hold(rt);
    return rt;
  }

  /** The request that acquired `rt` has ended. */
  release(rt: Runtime): void {
    this.#requests--;
    this.unhold(rt);
  }

  /** Keeps `rt` open for work that outlives the request that started it (a shared backend fetch). */
  hold(rt: Runtime): void {
    this.#active.set(rt, (this.#active.get(rt) ?? 0) + 1);
  }

  unhold(rt: Runtime): void {
    const n = (this.#active.get(rt) ?? 1) - 1;
    if (n > 0) return void this.#active.set(rt, n);
    this.#active.delete(rt);
    if (this.#retired.delete(rt)) close(rt);
  }

  /** Makes `next` current; the previous runtime closes after its last request. */
  swap(next: Runtime): Runtime {
    const prev = this.#current;
    this.#current = next;
    if (this.#active.has(prev)) this.#retired.add(prev);
    else close(prev);
    return prev;
  }

  /** Requests still running on any runtime. */
  get inFlight(): number {
    return this.#requests;
  }

  closeAll(): void {
    close(this.#current);
    for (const rt of this.#retired) close(rt);
    this.#retired.clear();
  }
}

function close(rt: Runtime): void {
  rt.upstream.close();
}
