/**
 * @module metrics
 * Prometheus metrics on a registry of the server's own (not prom-client's
 * global one, so several servers in one test process stay apart).
 * Must not: serve HTTP (the admin handler does).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Cache } from './cache/cache.js';

export interface Metrics {
  registry: Registry;
  /** Counts one answered request (label children memoized: this runs per request). */
  recordRequest(status: number, cache: string, seconds: number): void;
  requests: Counter<'status' | 'cache'>;
  duration: Histogram<'cache'>;
  upstream: Counter<'outcome'>;
  upstreamDuration: Histogram;
  reloads: Counter<'result'>;
  generation: Gauge;
  tlsRefused: Counter<'reason'>;
  /** Client connections closed unanswered at limits.maxConnections. */
  connectionsRefused: Counter;
  /** Reads open client connections and the cap at scrape time. */
  trackConnections(open: () => number, max: () => number): void;
}

/**
 * prom-client's default metrics include three gauges named `..._total`,
 * which promtool rejects (`_total` is for counters): they are removed. The
 * same numbers by type remain (`gpr_nodejs_active_handles{type}` ...).
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles', 'nodejs_active_requests', 'nodejs_active_resources'] as const;

/** Creates the metrics, reading cache gauges from `cache` at scrape time. */
export function createMetrics(cache: Cache): Metrics {
  const store = cache.memory;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gpr_' });
  const registers = [registry];
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(`gpr_${name}_total`);
  new Gauge({ name: 'gpr_cache_entries', help: 'Objects in the cache', registers, collect() { this.set(store.entries); } });
  new Gauge({ name: 'gpr_cache_bytes', help: 'Bytes charged against cache.maxBytes', registers, collect() { this.set(store.sizeBytes); } });
  new Gauge({ name: 'gpr_cache_max_bytes', help: 'cache.maxBytes', registers, collect() { this.set(store.maxBytes); } });
  new Gauge({ name: 'gpr_inflight_fetches', help: 'Backend fetches under way (single-flight)', registers, collect() { this.set(cache.fills); } });
  new Gauge({ name: 'gpr_cache_disk_bytes', help: 'Bytes of committed objects in cache.dir that this process knows of', registers, collect() { this.set(cache.disk?.sizeBytes ?? 0); } });
  new Gauge({ name: 'gpr_cache_disk_entries', help: 'Objects in cache.dir that this process knows of', registers, collect() { this.set(cache.disk?.entries ?? 0); } });
  const requests = new Counter({ name: 'gpr_requests_total', help: 'Requests answered, by status and X-Cache', labelNames: ['status', 'cache'], registers });
  const duration = new Histogram({
    name: 'gpr_request_duration_seconds',
    help: 'Time from request to the end of the response',
    labelNames: ['cache'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers,
  });
  const counted = new Map<string, { inc(): void }>();
  const timed = new Map<string, { observe(v: number): void }>();
  return {
    registry,
    recordRequest(status, cache, seconds) {
      const key = `${status} ${cache}`;
      let c = counted.get(key);
      if (!c) counted.set(key, (c = requests.labels(String(status), cache)));
      c.inc();
      let h = timed.get(cache);
      if (!h) timed.set(cache, (h = duration.labels(cache)));
      h.observe(seconds);
    },
    requests,
    duration,
    upstream: new Counter({ name: 'gpr_upstream_requests_total', help: 'Backend fetches, by status or error code', labelNames: ['outcome'], registers }),
    upstreamDuration: new Histogram({
      name: 'gpr_upstream_head_seconds',
      help: 'Time to the backend response head',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    }),
    reloads: new Counter({ name: 'gpr_config_reloads_total', help: 'Config reloads, by result', labelNames: ['result'], registers }),
    generation: new Gauge({ name: 'gpr_config_generation', help: 'Generation of the config in use (1 at start)', registers }),
    tlsRefused: new Counter({ name: 'gpr_tls_refused_total', help: 'TLS handshakes refused, by reason', labelNames: ['reason'], registers }),
    connectionsRefused: new Counter({ name: 'gpr_connections_refused_total', help: 'Client connections closed unanswered because limits.maxConnections were open', registers }),
    trackConnections(open, max) {
      new Gauge({ name: 'gpr_connections_open', help: 'Open client connections on the proxy listeners', registers, collect() { this.set(open()); } });
      new Gauge({ name: 'gpr_connections_max', help: 'limits.maxConnections in effect', registers, collect() { this.set(max()); } });
    },
  };
}
