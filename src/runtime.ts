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
import type { ProxyRequest } from './goproxy/path.js';
import { chainLabel, createChain, entrySpecs, type Chain, type ChainHooks } from './upstream/chain.js';
import { createRouter, type Router } from './upstream/route.js';
import type { TlsMaterial } from './tls/material.js';

export interface Runtime {
  readonly generation: number;
  readonly config: Config;
  /** The public chain (`upstream`). */
  readonly upstream: Chain;
  /** Where each request goes and what a failure turns into (upstream/route.ts). */
  readonly route: Router;
  /** Every chain of this runtime: public, private and checksum databases. */
  readonly chains: readonly Chain[];
  /** Certificates for the HTTPS listener; undefined when it is off. */
  readonly tls: TlsMaterial | undefined;
}

/** Builds a runtime; throws (and leaves nothing open) if any part fails. */
export function buildRuntime(config: Config, generation: number, tls: TlsMaterial | undefined, hooks: ChainHooks = {}): Runtime {
  const env = hooks.env ?? process.env;
  // Specs first: they read token files and may throw before any agent exists.
  const mainSpecs = entrySpecs(config.upstream, config, env);
  const privateSpecs = config.private.map((rule) => (rule.upstream === undefined ? undefined : entrySpecs(rule.upstream, config, env)));
  const chains: Chain[] = [];
  const make = (specs: Parameters<typeof createChain>[0]) => {
    const chain = createChain(specs, hooks);
    chains.push(chain);
    return chain;
  };
  const main = make(mainSpecs);
  const privateChains = new Map<number, Chain>();
  privateSpecs.forEach((specs, i) => specs && privateChains.set(i, make(specs)));
  const sumdb = new Map<string, Chain>();
  for (const [name, url] of Object.entries(config.sumdb)) {
    if (url === 'upstream') {
      sumdb.set(name, main);
      continue;
    }
    const prefix = new URL(url).pathname.replace(/\/+$/, '');
    // `<url>/latest`, `<url>/lookup/...`, `<url>/tile/...` (the checksum database's own layout).
    const rewrite = (request: ProxyRequest) => (request.kind === 'sumdb' ? `${prefix}/${request.sumdbPath}` : prefix);
    sumdb.set(name, make([{ url, fallThrough: 'notfound', rewrite, connectMs: config.timeouts.connectMs, responseMs: config.timeouts.responseMs, headers: {}, maxFailures: 3, cooldownMs: 10_000 }]));
  }
  const route = createRouter(config, { main, private: privateChains, sumdb });
  return { generation, config, upstream: main, route, chains, tls };
}

/** `upstream` for a log line: GOPROXY syntax, never header values. */
export function describeUpstream(setting: Config['upstream']): string {
  return typeof setting === 'string' ? setting : chainLabel(setting);
}

/** True unless every entry of the public chain is cooling down (/readyz). */
export function upstreamAvailable(rt: Runtime): boolean {
  return rt.upstream.available();
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
  for (const chain of rt.chains) chain.close();
}
