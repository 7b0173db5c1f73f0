/**
 * @module bench/forward-micro
 * `node --import tsx bench/forward-micro.ts [--duration S] [--connections N] [--rounds R]`
 * Micro-bench of the backend fetch alone: src/upstream/forward.ts (http-proxy
 * with a stand-in request) against a plain `http.request` on a keep-alive
 * agent with the same options, both GETting the same `.info` paths (a new
 * version per request, as in miss-info) from the fixture backend in a child
 * process, body consumed. Variants alternate for R rounds so drift in the
 * machine's load hits both. Reports req/s and this process's CPU per request:
 * the fetch's own cost, which the proxy pays on every MISS.
 * Must not: include the cache, the handler or the client side of the proxy.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serveArgs, startServe, stopAll } from './procs.js';
import { backendPath, MISS_MODULE, missVersion } from './scenarios.js';

type Fetch = (path: string) => Promise<void>;

/** What the proxy sends upstream on a MISS (src/handler.ts upstreamHeaders). */
const HEADERS: OutgoingHttpHeaders = {
  'x-go-proxy-original-path': '/example.com/bench/miss/@v/v1.0.0.info',
  'x-forwarded-for': '127.0.0.1',
  'x-forwarded-proto': 'http',
  'x-forwarded-host': '127.0.0.1',
  via: '1.1 go-proxy-rewriter',
  'user-agent': 'bench-forward-micro',
  'accept-encoding': 'identity',
  accept: '*/*',
};

function drain(body: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    body.on('data', () => undefined);
    body.once('end', resolve);
    body.once('error', reject);
  });
}

/** The same agent options as src/upstream/forward.ts. */
function plainFetch(base: string): Fetch {
  const url = new URL(base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64, scheduling: 'lifo' });
  return (path) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, path, method: 'GET', agent, headers: HEADERS }, (res) => drain(res).then(resolve, reject));
      req.once('error', reject);
      req.end();
    });
}

async function forwardFetch(base: string): Promise<Fetch> {
  const { createUpstream } = (await import(new URL('../dist/src/upstream/forward.js', import.meta.url).href)) as typeof import('../src/upstream/forward.js');
  const upstream = createUpstream({ url: base, connectMs: 5_000, responseMs: 30_000 });
  return async (path) => drain((await upstream.fetch(path, HEADERS)).body);
}

async function measure(fetch: Fetch, connections: number, durationS: number): Promise<{ reqPerS: number; cpuUsPerReq: number; p50Ms: number; p99Ms: number; errors: number }> {
  let i = 0;
  let errors = 0;
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationS * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await fetch(backendPath(MISS_MODULE, missVersion(i++), 'info'));
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
  return { reqPerS: latencies.length / wallS, cpuUsPerReq: (cpu.user + cpu.system) / (latencies.length || 1), p50Ms: at(50), p99Ms: at(99), errors };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' }, rounds: { type: 'string', default: '3' } } });
  const durationS = Number(values.duration);
  const connections = Number(values.connections);
  const rounds = Number(values.rounds);
  const dir = mkdtempSync(join(os.tmpdir(), 'gpr-forward-'));
  const watchdog = setTimeout(() => {
    process.stderr.write('forward-micro: watchdog fired\n');
    void stopAll().finally(() => process.exit(2));
  }, (rounds * 2 * (durationS + 2) + 60) * 1000);
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  try {
    const backend = await startServe('backend', serveArgs('backend'), join(dir, 'backend.out'), join(dir, 'backend.err'));
    const base = backend.ready.url as string;
    const variants: Array<[string, Fetch]> = [
      ['forward.ts (http-proxy)', await forwardFetch(base)],
      ['http.request + Agent', plainFetch(base)],
    ];
    for (const [, fetch] of variants) await measure(fetch, connections, 1); // warm-up
    const results = new Map<string, Array<Awaited<ReturnType<typeof measure>>>>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, fetch] of variants) {
        const r = await measure(fetch, connections, durationS);
        results.set(name, [...(results.get(name) ?? []), r]);
        process.stderr.write(`round ${round + 1} ${name}: ${r.reqPerS.toFixed(0)} req/s, ${r.cpuUsPerReq.toFixed(1)} µs CPU/req, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, errors ${r.errors}\n`);
      }
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    process.stdout.write(`\n| fetch | req/s (median of ${rounds}) | client CPU µs/req (median) | p99 ms (median) |\n|---|---:|---:|---:|\n`);
    for (const [name, rs] of results) {
      process.stdout.write(`| ${name} | ${median(rs.map((r) => r.reqPerS)).toFixed(0)} | ${median(rs.map((r) => r.cpuUsPerReq)).toFixed(1)} | ${median(rs.map((r) => r.p99Ms)).toFixed(2)} |\n`);
    }
  } finally {
    clearTimeout(watchdog);
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(`forward-micro failed: ${(err as Error).stack ?? String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);
