// The request metrics recorded per request as plain counts (src/metrics.ts):
// /metrics text and the JSON the workers send to the supervisor are exactly
// what prom-client's own Counter and Histogram give for the same requests,
// including after a scrape, more requests and another scrape, and when
// aggregated across workers as the supervisor does.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { expect, test } from 'vitest';
import { BatchedHistogram, createMetrics } from '../../src/metrics.js';
import type { Cache } from '../../src/cache/cache.js';

const BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];

/** What src/metrics.ts did before: prom-client's own metrics, called per request. */
function reference() {
  const registry = new Registry();
  const registers = [registry];
  const requests = new Counter({ name: 'gpr_requests_total', help: 'Requests answered, by status and X-Cache', labelNames: ['status', 'cache'], registers });
  const duration = new Histogram({ name: 'gpr_request_duration_seconds', help: 'Time from request to the end of the response', labelNames: ['cache'], buckets: BUCKETS, registers });
  return {
    registry,
    record(status: number, cache: string, seconds: number) {
      requests.labels(String(status), cache).inc();
      duration.labels(cache).observe(seconds);
    },
  };
}

const fakeCache = { memory: { entries: 0, sizeBytes: 0, maxBytes: 0 }, fills: 0, disk: undefined } as unknown as Cache;

/** Requests: every bucket edge, above the last bucket, several statuses and cache values, first-seen order not sorted. */
const REQUESTS: Array<[number, string, number]> = [
  [200, 'MISS', 0.2],
  [200, 'HIT', 0.0001],
  [200, 'HIT', 0.0005],
  [200, 'HIT', 0.00051],
  [404, 'MISS', 31],
  [499, 'HIT', 5],
  [200, 'STALE', 0.01],
  [400, 'NONE', 0],
  [304, 'HIT', 1],
  [200, 'BYPASS', 0.05],
  ...BUCKETS.map((b): [number, string, number] => [200, 'HIT', b]),
];

async function bothAfter(requests: Array<[number, string, number]>, ours = createMetrics(fakeCache), ref = reference()) {
  for (const [status, cache, s] of requests) {
    ours.recordRequest(status, cache, s);
    ref.record(status, cache, s);
  }
  const names = ['gpr_requests_total', 'gpr_request_duration_seconds'];
  const oursText = await Promise.all(names.map((n) => ours.registry.getSingleMetricAsString(n)));
  const refText = await Promise.all(names.map((n) => ref.registry.getSingleMetricAsString(n)));
  const oursJson = (await ours.registry.getMetricsAsJSON()).filter((m) => names.includes(m.name));
  const refJson = await ref.registry.getMetricsAsJSON();
  return { ours, ref, oursText, refText, oursJson, refJson };
}

test('text and JSON equal prom-client per-request metrics, across two scrapes', async () => {
  const a = await bothAfter(REQUESTS);
  expect(a.oursText).toEqual(a.refText);
  expect(a.oursJson).toEqual(a.refJson);
  expect(a.oursText[1]).toContain('gpr_request_duration_seconds_bucket{le="0.0005",cache="HIT"} 3');
  expect(a.oursText[0]).toContain('gpr_requests_total{status="200",cache="HIT"} 13');
  // More requests after a scrape are added, not lost or counted twice.
  const b = await bothAfter(REQUESTS.slice(0, 4), a.ours, a.ref);
  expect(b.oursText).toEqual(b.refText);
  expect(JSON.parse(JSON.stringify(b.oursJson))).toEqual(JSON.parse(JSON.stringify(b.refJson)));
});

test('aggregated across workers (the supervisor, AggregatorRegistry) as prom-client metrics would be', async () => {
  const w1 = await bothAfter(REQUESTS);
  const w2 = await bothAfter(REQUESTS.slice(3));
  // Workers send JSON over IPC.
  const wire = (x: unknown) => JSON.parse(JSON.stringify(x)) as Parameters<typeof AggregatorRegistry.aggregate>[0][number];
  const ours = await AggregatorRegistry.aggregate([wire(w1.oursJson), wire(w2.oursJson)]).metrics();
  const ref = await AggregatorRegistry.aggregate([wire(w1.refJson), wire(w2.refJson)]).metrics();
  expect(ours).toBe(ref);
  expect(ours).toContain('gpr_request_duration_seconds_count{cache="HIT"} 28');
});

test('an empty histogram and reset() print like prom-client', async () => {
  const r1 = new Registry();
  const r2 = new Registry();
  const ours = new BatchedHistogram({ name: 'h', help: 'x', labelNames: ['cache'], buckets: [1, 2], registers: [r1] });
  new Histogram({ name: 'h', help: 'x', labelNames: ['cache'], buckets: [1, 2], registers: [r2] });
  expect(await r1.metrics()).toBe(await r2.metrics());
  ours.observe({ cache: 'HIT' }, 1.5);
  expect(await r1.metrics()).toContain('h_bucket{le="2",cache="HIT"} 1');
  r1.resetMetrics();
  expect(await r1.metrics()).toBe(await r2.metrics());
});
