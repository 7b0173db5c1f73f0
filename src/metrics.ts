/**
 * @module metrics
 * Prometheus metrics on a registry of the server's own (not prom-client's
 * global one, so several servers in one test process stay apart).
 * Must not: serve HTTP (the admin handler does).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type HistogramConfiguration, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
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
  /** 1 while a chain entry takes requests, 0 while it cools down (passive health). */
  upstreamUp: Gauge<'upstream'>;
  /** Cool-downs started, by chain entry. */
  upstreamCooldowns: Counter<'upstream'>;
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
  // Per request: plain counts, turned into prom-client values at scrape time
  // (collect()): its labelled inc() and observe() hash the labels on every
  // call (1.5-3 % of a worker's CPU on a memory HIT).
  type Pending = { child: { inc(n: number): void }; n: number };
  const pending = new Map<number, Map<string, Pending>>();
  const inOrder: Pending[] = []; // first seen first, as prom-client prints them
  const requests = new Counter({
    name: 'gpr_requests_total',
    help: 'Requests answered, by status and X-Cache',
    labelNames: ['status', 'cache'],
    registers,
    collect() {
      for (const entry of inOrder) {
        if (entry.n === 0) continue;
        entry.child.inc(entry.n);
        entry.n = 0;
      }
    },
  });
  const duration = new BatchedHistogram<'cache'>({
    name: 'gpr_request_duration_seconds',
    help: 'Time from request to the end of the response',
    labelNames: ['cache'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers,
  });
  return {
    registry,
    recordRequest(status, cache, seconds) {
      let byCache = pending.get(status);
      if (!byCache) pending.set(status, (byCache = new Map()));
      let entry = byCache.get(cache);
      if (!entry) {
        byCache.set(cache, (entry = { child: requests.labels(String(status), cache), n: 0 }));
        inOrder.push(entry);
      }
      entry.n++;
      duration.record(cache, seconds);
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
    // Workers aggregated by a supervisor: the newest one (they reload together).
    generation: new Gauge({ name: 'gpr_config_generation', help: 'Generation of the config in use (1 at start)', registers, aggregator: 'max' }),
    tlsRefused: new Counter({ name: 'gpr_tls_refused_total', help: 'TLS handshakes refused, by reason', labelNames: ['reason'], registers }),
    upstreamUp: new Gauge({ name: 'gpr_upstream_up', help: 'Chain entry takes requests (1) or cools down after repeated failures (0)', labelNames: ['upstream'], registers }),
    upstreamCooldowns: new Counter({ name: 'gpr_upstream_cooldowns_total', help: 'Cool-downs started after repeated failures, by chain entry', labelNames: ['upstream'], registers }),
    connectionsRefused: new Counter({ name: 'gpr_connections_refused_total', help: 'Client connections closed unanswered because limits.maxConnections were open', registers }),
    trackConnections(open, max) {
      new Gauge({ name: 'gpr_connections_open', help: 'Open client connections on the proxy listeners', registers, collect() { this.set(open()); } });
      new Gauge({ name: 'gpr_connections_max', help: 'limits.maxConnections in effect', registers, collect() { this.set(max()); } });
    },
  };
}

/** One label value's observations: counts per bucket (not cumulative), sum and count. */
interface Observed {
  labels: LabelValues<string>;
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram with one label whose observe is an array increment (the hot
 * path: one per request), and whose get() answers exactly what prom-client's
 * Histogram answers for the same observations (test/unit/metrics.test.ts
 * compares the two): buckets cumulative with `le` first, then +Inf, _sum and
 * _count, label sets in the order first seen, aggregated by sum across
 * workers.
 */
export class BatchedHistogram<T extends string> extends Histogram<T> {
  readonly #bounds: readonly number[];
  readonly #label: T;
  readonly #observed = new Map<string, Observed>();
  readonly #name: string;
  readonly #help: string;

  constructor(config: HistogramConfiguration<T> & { labelNames: readonly [T]; buckets: readonly number[] }) {
    super(config);
    this.#name = config.name;
    this.#help = config.help;
    this.#bounds = [...config.buckets]; // in the given order, as prom-client uses them
    this.#label = config.labelNames[0];
    // prom-client assigns observe in its constructor: route the (labels, value) form here too.
    this.observe = ((labels: unknown, value?: unknown) => {
      if (typeof labels !== 'object' || labels === null || typeof value !== 'number') throw new TypeError(`${config.name}: observe(labels, value) only`);
      this.record(String((labels as Record<string, unknown>)[this.#label]), value);
    }) as Histogram<T>['observe'];
  }

  /** Observes `value` (seconds) under label value `label`. */
  record(label: string, value: number): void {
    // prom-client throws on these; a request's duration never is one.
    if (!Number.isFinite(value)) return;
    let o = this.#observed.get(label);
    if (!o) this.#observed.set(label, (o = { labels: { [this.#label]: label } as LabelValues<string>, counts: new Float64Array(this.#bounds.length), sum: 0, count: 0 }));
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        o.counts[i]!++;
        break;
      }
    }
    o.sum += value;
    o.count++;
  }

  override get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    const name = this.#name;
    const values: Array<MetricValueWithName<T> & { exemplar?: null }> = [];
    for (const o of this.#observed.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += o.counts[i]!;
        values.push({ value: acc, metricName: `${name}_bucket`, exemplar: null, labels: { le: this.#bounds[i], ...o.labels } as LabelValues<T> });
      }
      values.push({ value: o.count, metricName: `${name}_bucket`, exemplar: null, labels: { le: '+Inf', ...o.labels } as LabelValues<T> });
      values.push({ value: o.sum, metricName: `${name}_sum`, exemplar: undefined, labels: { ...o.labels } as LabelValues<T> });
      values.push({ value: o.count, metricName: `${name}_count`, exemplar: undefined, labels: { ...o.labels } as LabelValues<T> });
    }
    // prom-client's types list a `collect` its objects do not carry.
    return Promise.resolve({ name, help: this.#help, type: 'histogram', values, aggregator: 'sum' } as unknown as MetricObjectWithValues<MetricValueWithName<T>>);
  }

  /** What the registry prints (prom-client's Histogram keeps the label apart here; the text is the same). */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    return this.get();
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if (#observed in this) this.#observed.clear();
  }
}
