/**
 * @module bench/forward-micro
 * `node --import tsx bench/forward-micro.ts [--duration S] [--connections N] [--rounds R]`
 * The forwarding-engine comparison (issue 10): the fill path's fetch (head
 * promise + body stream, the `Upstream` contract of src/upstream/forward.ts)
 * on each candidate engine, GETting the same `.info` paths (a new version per
 * request, as in miss-info) from the fixture backend in a child process, body
 * consumed:
 *   - undici: src/upstream/forward.ts (Pool + dispatch), the engine in use,
 *   - http-proxy: the fetch as it was (bench/engines/http-proxy.ts),
 *   - node:http: http.request on a tuned keep-alive agent (bench/engines/node-http.ts),
 *   - a bare http.request on the same agent options (the floor).
 * http-proxy is no dependency of the proxy any more: `npm install --no-save
 * http-proxy` to include it (when missing it is reported and left out). Variants alternate for R rounds so drift in the machine's
 * load hits all; reports req/s and this process's CPU per fetch, and each
 * as a ratio of the first (undici's).
 * Must not: include the cache, the handler or the client side of the proxy.
 */
import http, { type OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serveArgs, startServe, stopAll } from './procs.js';
import { backendPath, MISS_MODULE, missVersion } from './scenarios.js';
import { createUpstream, type Upstream } from '../src/upstream/forward.js';
import { createNodeHttpUpstream } from './engines/node-http.js';

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

function drain(body: Readable): Promise<void> {
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

function viaUpstream(upstream: Upstream): Fetch {
  return async (path) => drain((await upstream.fetch(path, HEADERS)).body);
}

/** The candidates that can run here; a missing optional package is reported on stderr. */
async function candidates(base: string): Promise<Array<[string, Fetch]>> {
  const opts = { url: base, connectMs: 5_000, responseMs: 30_000 };
  const out: Array<[string, Fetch]> = [['undici Pool.dispatch (forward.ts)', viaUpstream(createUpstream(opts))]];
  try {
    const { createUpstream: createHttpProxyUpstream } = await import('./engines/http-proxy.js');
    out.push(['http-proxy', viaUpstream(await createHttpProxyUpstream(opts))]);
  } catch (err) {
    process.stderr.write(`http-proxy left out (npm install --no-save http-proxy): ${(err as Error).message}\n`);
  }
  out.push(['node:http + tuned Agent', viaUpstream(createNodeHttpUpstream(opts))]);
  out.push(['bare http.request', plainFetch(base)]);
  return out;
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
    const variants = await candidates(base);
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
    const med = (name: string, pick: (r: Awaited<ReturnType<typeof measure>>) => number) => median((results.get(name) ?? []).map(pick));
    const ref = variants[0]?.[0] as string;
    process.stdout.write(`\n| engine | req/s (median of ${rounds}) | ratio | client CPU µs/fetch (median) | ratio | p99 ms |\n|---|---:|---:|---:|---:|---:|\n`);
    for (const [name] of variants) {
      const rps = med(name, (r) => r.reqPerS);
      const cpu = med(name, (r) => r.cpuUsPerReq);
      process.stdout.write(
        `| ${name} | ${rps.toFixed(0)} | ${(rps / med(ref, (r) => r.reqPerS)).toFixed(2)}x | ${cpu.toFixed(1)} | ${(cpu / med(ref, (r) => r.cpuUsPerReq)).toFixed(2)}x | ${med(name, (r) => r.p99Ms).toFixed(2)} |\n`,
      );
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
