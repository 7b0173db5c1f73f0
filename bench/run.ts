/**
 * @module bench/run
 * `npm run bench [-- scenario ...] [--duration S] [--warmup S] [--rounds N] [--workers N] [--connections N] [--keep] [--cpu-prof] [--no-access-log]`
 * Starts the fixture backend, the proxy (compiled, dist/, `workers` N) and
 * nginx (worker_processes N) as child processes on 127.0.0.1, waits until
 * each is ready, primes the caches, then runs every selected scenario against
 * both in this one invocation: rounds of warm-up + measured run with the
 * targets alternating, medians per target. Prints the tables and ratios,
 * writes bench/results/<date>-<scenario>.json, latest.json and the ratio
 * chart bench/ratios.svg.
 * Every process it started is stopped by PID at the end, on error, on
 * SIGINT/SIGTERM and when the watchdog fires.
 * Must not: send traffic anywhere but 127.0.0.1, or leave a process behind.
 */
import autocannon from 'autocannon';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { runHandshakes } from './handshakes.js';
import { nginxVersion, startNginx, type Nginx } from './nginx.js';
import { configSchema } from '../src/config/schema.js';
import { allModuleVersions } from '../test/helpers/fixture-modules.js';
import { goModDownload } from './go.js';
import { cpuMs, proxyArgs, rssBytes, serveArgs, signal, startServe, stopAll, type Proc, type ServeChild } from './procs.js';
import { renderChart } from './svg.js';
import { runWrk } from './wrk.js';
import {
  BENCH_VERSION,
  BURST_MODULE,
  BURST_VERSIONS,
  DISK_CACHE,
  MISS_CACHE,
  TLS_NAME,
  backendPath,
  goProxyPath,
  load,
  missVersion,
  scenarios,
  type Scenario,
  type TargetName,
} from './scenarios.js';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
/** The chart the README shows (committed from the run the README quotes). */
const CHART_FILE = fileURLToPath(new URL('./ratios.svg', import.meta.url));

// autocannon 8 appends every response body to a string
// (lib/pipelinedRequestsQueue.js addBody: `req.body += data`), UTF-8 decoding
// each byte: with a 1 MiB .zip that caps the client at ~70 MB/s whatever the
// server. The body is only read by verifyBody/expectBody/onResponse, which
// this bench does not use, so it is dropped. Byte counts are unaffected
// (they come from addByteCount).
const autocannonQueue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js') as { prototype: { addBody(data: Buffer): void } };
autocannonQueue.prototype.addBody = () => undefined;

/** A bad command line: reported without a stack. */
class UsageError extends Error {}

interface Params {
  durationS: number;
  warmupS: number;
  connections: number;
  pipelining: number;
  rounds: number;
  /** The proxy's `workers` and nginx's worker_processes. */
  workers: number;
}

/** One measured run of one target in one round. */
interface RunResult {
  target: TargetName;
  round: number;
  reqPerS: number;
  requests: number;
  durationS: number;
  latencyMs: { p50: number; p99: number; mean: number };
  /** Response bytes per second (headers included), MB = 1e6 bytes. */
  mbPerS: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** CPU of the target's server process(es), % of one core. */
  serverCpuPct: number;
  /** Server CPU time per answered request, µs: steadier than req/s when other load shares the cores. */
  serverCpuUsPerReq: number;
  backendCpuPct: number;
  /** CPU of the load generator (this process, or wrk), % of one core. */
  clientCpuPct: number;
  /** Proxy targets: answers by X-Cache, from the proxy's /metrics. */
  xCache?: Record<string, number>;
  /** reload-under-load: SIGHUPs sent during the run. */
  sighups?: number;
}

/** Medians over the rounds of one target. */
interface Median {
  target: TargetName;
  reqPerS: number;
  p50: number;
  p99: number;
  mbPerS: number;
  serverCpuPct: number;
  serverCpuUsPerReq: number;
  clientCpuPct: number;
  /** Sums over the rounds. */
  errors: number;
  non2xx: number;
  sighups?: number;
}

interface BurstRun {
  target: TargetName;
  round: number;
  path: string;
  backendRequests: number;
  status200: number;
  errors: number;
  /** Distinct sha256 of the 200 bodies (1 = all equal). */
  distinctSha256: number;
  /** The bodies' sha256 equals the backend's zip. */
  sha256MatchesBackend: boolean;
  wallMs: number;
}

interface GoRunResult {
  target: string;
  transport: 'http' | 'https';
  round: number;
  coldMs: number;
  warmMs: number;
  ok: boolean;
  error?: string;
}

interface ScenarioResult {
  scenario: string;
  summary: string;
  run?: Scenario['run'];
  goal?: number;
  runs?: RunResult[];
  medians?: Median[];
  bursts?: BurstRun[];
  goRuns?: GoRunResult[];
  /** ours / nginx, oriented so higher is better for the proxy. */
  ratios: Array<{ label: string; ratio: number; goal?: number; note?: string }>;
  /** VmRSS of every proxy process of the subject (supervisor + workers) after the scenario, bytes. */
  proxyRssBytes?: number;
  external?: string;
  warnings: string[];
}

interface Target {
  name: TargetName;
  url: string;
  https: boolean;
  /** `goproxy`: /{module}/@v/{version}.{kind}; `backend`: the internal layout. */
  paths: 'goproxy' | 'backend';
  ca?: string;
  /** Whose CPU counts as the server's. */
  proc: Proc;
  /** The proxy's admin URL, for X-Cache counts. */
  admin?: string;
}

interface Env {
  dir: string;
  accessLog: boolean;
  workers: number;
  profStamp?: string;
  backend: ServeChild;
  proxy?: ServeChild;
  proxyCa?: string;
  proxyMiss?: ServeChild;
  proxyDisk?: ServeChild;
  nginx?: Nginx;
  minimal?: ServeChild;
}

/** Whether this build has the disk tier (cache.dir). */
const HAS_DISK_TIER = configSchema.safeParse({ cache: { dir: '/nonexistent' } }).success;
/** Whether this build can offer HTTP/2 on the HTTPS listener (tls.http2). */
const HAS_HTTP2 = configSchema.safeParse({ tls: { http2: true } }).success;

function parseCli(): { names: string[]; params: Params; keep: boolean; cpuProf: boolean; accessLog: boolean } {
  const parse = () =>
    parseArgs({
      allowPositionals: true,
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        rounds: { type: 'string' },
        workers: { type: 'string' },
        keep: { type: 'boolean', default: false },
        'cpu-prof': { type: 'boolean', default: false },
        'no-access-log': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(
      `usage: npm run bench [-- scenario ...] [--duration S] [--warmup S] [--rounds N] [--workers N] [--connections N] [--keep] [--cpu-prof] [--no-access-log]\nscenarios:\n${scenarios.map((s) => `  ${s.name.padEnd(18)} ${s.summary}`).join('\n')}\n`,
    );
    process.exit(0);
  }
  const num = (v: string | undefined, name: string, fallback: number, min: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const known = new Set(scenarios.map((s) => s.name));
  for (const name of positionals) if (!known.has(name)) throw new UsageError(`unknown scenario ${JSON.stringify(name)}; known: ${[...known].join(', ')}`);
  return {
    names: positionals.length ? positionals : scenarios.map((s) => s.name),
    params: {
      durationS: num(values.duration, 'duration', load.durationS, 1),
      warmupS: num(values.warmup, 'warmup', load.warmupS, 0),
      connections: Math.floor(num(values.connections, 'connections', load.connections, 1)),
      pipelining: load.pipelining,
      rounds: Math.floor(num(values.rounds, 'rounds', load.rounds, 1)),
      workers: Math.floor(num(values.workers, 'workers', os.availableParallelism(), 1)),
    },
    keep: values.keep ?? false,
    cpuProf: values['cpu-prof'] ?? false,
    accessLog: !(values['no-access-log'] ?? false),
  };
}

/** One GET on a fresh connection; HTTPS verifies the chain against `ca` for TLS_NAME. */
function get(url: string, path: string, ca?: string): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const onRes = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    };
    const opts = { agent: false as const, timeout: 10_000 };
    const req = url.startsWith('https:')
      ? https.get(`${url}${path}`, { ...opts, ca, servername: TLS_NAME, headers: { host: TLS_NAME }, rejectUnauthorized: true }, onRes)
      : http.get(`${url}${path}`, opts, onRes);
    req.on('timeout', () => req.destroy(new Error(`GET ${url}${path}: timed out`)));
    req.on('error', reject);
  });
}

/** Answers by X-Cache so far, from gpr_requests_total. */
async function xCacheCounts(admin: string): Promise<Record<string, number>> {
  const { body } = await get(admin, '/metrics');
  const counts: Record<string, number> = {};
  for (const line of body.toString().split('\n')) {
    if (!line.startsWith('gpr_requests_total{')) continue;
    const cache = /cache="([^"]*)"/.exec(line)?.[1] ?? '?';
    const status = /status="([^"]*)"/.exec(line)?.[1] ?? '?';
    const key = `${cache} ${status}`;
    counts[key] = (counts[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}

/** Node flags that make a proxy child write a V8 CPU profile into bench/results/ when it exits. */
function cpuProfArgs(stamp: string | undefined, name: string): string[] {
  // Default file names (they carry the thread id), in a directory of their own.
  return stamp ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, `${stamp}-${name}-cpuprofile`)}`] : [];
}

/** The functions with the most self time in a .cpuprofile, as table lines. */
function profileSummary(file: string, top = 15): string {
  type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    if (n.callFrame.functionName === '(idle)') continue;
    const hits = n.hitCount ?? 0;
    total += hits;
    const where = n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|src)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${n.callFrame.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + hits);
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `  ${((v / (total || 1)) * 100).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
}

interface ProxyConfigOptions {
  name: string;
  https: boolean;
  accessLog: boolean;
  workers: number;
  cache?: { maxBytes: number; maxEntryBytes: number };
  /** A disk tier in this directory (builds that have one); otherwise memory only. */
  cacheDir?: string | null;
  http2?: boolean;
}

function proxyConfig(backendUrl: string, dir: string, opts: ProxyConfigOptions): string {
  const file = join(dir, `${opts.name}.json`);
  const config = {
    listen: { http: '127.0.0.1:0', https: opts.https ? '127.0.0.1:0' : null, admin: '127.0.0.1:0' },
    upstream: backendUrl,
    rewrite: 'internal',
    workers: opts.workers,
    // Without a disk tier in the scenario, say so: the default cache.dir would be cache/ in the working directory.
    cache: { ...(opts.cache ?? {}), ...(HAS_DISK_TIER ? { dir: opts.cacheDir ?? null } : {}) },
    tls: { dir: join(dir, 'tls'), hosts: [TLS_NAME], ...(opts.http2 !== undefined ? { http2: opts.http2 } : {}) },
    shutdown: { drainTimeoutMs: 2_000 },
    // info writes the access line of every request (the production default); warn has none.
    log: { level: opts.accessLog ? 'info' : 'warn' },
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function startProxy(env: Env, name: string, backendUrl: string, opts: Omit<ProxyConfigOptions, 'name' | 'accessLog' | 'workers'>): Promise<ServeChild> {
  const config = proxyConfig(backendUrl, env.dir, { ...opts, name, accessLog: env.accessLog, workers: env.workers });
  return startServe(name, proxyArgs(config, cpuProfArgs(env.profStamp, name)), join(env.dir, `${name}.log`), join(env.dir, `${name}.err`));
}

async function startEnv(selected: readonly Scenario[], dir: string, accessLog: boolean, workers: number, profStamp?: string): Promise<Env> {
  const need = new Set(selected.filter((s) => s.run !== 'go' && s.run !== 'external').flatMap((s) => s.targets));
  const backend = await startServe('backend', serveArgs('backend'), join(dir, 'backend.out'), join(dir, 'backend.err'));
  const backendUrl = backend.ready.url as string;
  const env: Env = { dir, accessLog, workers, profStamp, backend };
  const starts: Array<Promise<unknown>> = [];
  if (need.has('proxy') || need.has('proxy-https')) {
    starts.push(
      // With a disk tier (production's default): the memory tiers serve the HITs, and the workers' one shared fill is what coalesce-burst counts.
      startProxy(env, 'proxy', backendUrl, { https: need.has('proxy-https'), cacheDir: join(dir, 'proxy-cache') }).then((p) => {
        env.proxy = p;
        if (need.has('proxy-https')) env.proxyCa = readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8');
      }),
    );
  }
  if (need.has('proxy-miss')) starts.push(startProxy(env, 'proxy-miss', backendUrl, { https: false, cache: MISS_CACHE }).then((p) => (env.proxyMiss = p)));
  if (need.has('proxy-disk') && HAS_DISK_TIER) {
    starts.push(startProxy(env, 'proxy-disk', backendUrl, { https: false, cache: DISK_CACHE, cacheDir: join(dir, 'proxy-disk-cache') }).then((p) => (env.proxyDisk = p)));
  }
  if (need.has('nginx') || need.has('nginx-https') || need.has('nginx-nocache')) {
    starts.push(startNginx({ dir: join(dir, 'nginx'), backendPort: Number(new URL(backendUrl).port), tlsName: TLS_NAME, accessLog, workers }).then((n) => (env.nginx = n)));
  }
  await Promise.all(starts);
  return env;
}

function target(env: Env, name: TargetName): Target {
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${name}: ${what} is not running`);
    return v;
  };
  switch (name) {
    case 'proxy': {
      const p = need(env.proxy, 'proxy');
      return { name, url: need(p.ready.http, 'http listener'), https: false, paths: 'goproxy', proc: p, admin: p.ready.admin };
    }
    case 'proxy-https': {
      const p = need(env.proxy, 'proxy');
      return { name, url: need(p.ready.https, 'https listener'), https: true, paths: 'goproxy', ca: env.proxyCa, proc: p, admin: p.ready.admin };
    }
    case 'proxy-miss': {
      const p = need(env.proxyMiss, 'proxy-miss');
      return { name, url: need(p.ready.http, 'http listener'), https: false, paths: 'goproxy', proc: p, admin: p.ready.admin };
    }
    case 'proxy-disk': {
      const p = need(env.proxyDisk, 'proxy-disk (a build with a disk tier)');
      return { name, url: need(p.ready.http, 'http listener'), https: false, paths: 'goproxy', proc: p, admin: p.ready.admin };
    }
    case 'node-minimal': {
      const m = need(env.minimal, 'node-minimal');
      return { name, url: need(m.ready.url, 'url'), https: false, paths: 'goproxy', proc: m };
    }
    case 'nginx':
      return { name, url: need(env.nginx, 'nginx').cachedUrl, https: false, paths: 'goproxy', proc: need(env.nginx, 'nginx') };
    case 'nginx-nocache':
      return { name, url: need(env.nginx, 'nginx').uncachedUrl, https: false, paths: 'goproxy', proc: need(env.nginx, 'nginx') };
    case 'nginx-https': {
      const n = need(env.nginx, 'nginx');
      return { name, url: n.httpsUrl, https: true, paths: 'goproxy', ca: n.caPem, proc: n };
    }
    case 'backend-direct':
      return { name, url: need(env.backend.ready.url, 'url'), https: false, paths: 'backend', proc: env.backend };
  }
}

function pathOf(t: Target, s: Scenario, version: string): string {
  return t.paths === 'backend' ? backendPath(s.module, version, s.kind) : goProxyPath(s.module, version, s.kind);
}

/** Fills the caches of every caching target and checks the next answers are HITs (every worker's, for ours). */
async function prime(env: Env, s: Scenario, warnings: string[]): Promise<void> {
  const path = goProxyPath(s.module, BENCH_VERSION, s.kind);
  for (const name of s.targets) {
    if (name === 'node-minimal' || name === 'backend-direct') continue;
    const t = target(env, name);
    // One per worker at least (each has its own memory tier): new connections spread over them.
    for (let i = 0; i < 4 * env.workers; i++) await get(t.url, path, t.ca);
    const second = await get(t.url, path, t.ca);
    if (second.status !== 200 || second.headers['x-cache'] !== 'HIT') {
      warnings.push(`${name}: primed ${path} answered ${second.status} X-Cache ${String(second.headers['x-cache'])}, expected 200 HIT`);
    }
  }
}

/** autocannon against `t`, `durationS` seconds; versions cycle through the miss module when the scenario says so. */
function cannon(t: Target, s: Scenario, params: Params, durationS: number): Promise<autocannon.Result> {
  let i = 0;
  const requests: autocannon.Request[] =
    s.versions === 'cycle'
      ? [{ method: 'GET', setupRequest: (req) => ({ ...req, path: pathOf(t, s, missVersion(i++)) }) }]
      : [{ method: 'GET', path: pathOf(t, s, BENCH_VERSION) }];
  return autocannon({
    url: t.url,
    connections: params.connections,
    pipelining: params.pipelining,
    duration: durationS,
    timeout: load.timeoutS,
    requests,
    headers: t.https ? { host: TLS_NAME } : {},
    // autocannon forces rejectUnauthorized: false; prime() has verified the chain against t.ca.
    ...(t.https ? { servername: TLS_NAME, tlsOptions: { ca: t.ca } } : {}),
  });
}

type LoadOutcome = Omit<RunResult, 'target' | 'round' | 'serverCpuPct' | 'serverCpuUsPerReq' | 'backendCpuPct' | 'clientCpuPct' | 'xCache'> & { clientCpuMs?: number };

async function loadOnce(t: Target, s: Scenario, params: Params, durationS: number): Promise<LoadOutcome> {
  if (s.run === 'handshake') {
    const { port, hostname } = new URL(t.url);
    const r = await runHandshakes({ host: hostname, port: Number(port), servername: TLS_NAME, ca: t.ca ?? '', path: pathOf(t, s, BENCH_VERSION), connections: params.connections, durationS, timeoutMs: load.timeoutS * 1000 });
    return { reqPerS: r.requests / r.durationS, requests: r.requests, durationS: r.durationS, latencyMs: r.latencyMs, mbPerS: r.bytes / r.durationS / 1e6, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx };
  }
  if (s.tool === 'wrk') {
    if (t.https) throw new Error('wrk scenarios are plain HTTP (wrk sends no SNI of our choosing)');
    const r = await runWrk({ url: t.url + pathOf(t, s, BENCH_VERSION), connections: params.connections, threads: load.wrkThreads, durationS, timeoutS: load.timeoutS }, (pid) => cpuMs([pid]));
    return { reqPerS: r.requests / r.durationS, requests: r.requests, durationS: r.durationS, latencyMs: r.latencyMs, mbPerS: r.bytes / r.durationS / 1e6, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, clientCpuMs: r.clientCpuMs };
  }
  const r = await cannon(t, s, params, durationS);
  return { reqPerS: r.requests.total / r.duration, requests: r.requests.total, durationS: r.duration, latencyMs: { p50: r.latency.p50, p99: r.latency.p99, mean: r.latency.mean }, mbPerS: r.throughput.total / r.duration / 1e6, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx };
}

/** One measured run (after its warm-up); `during` runs alongside the measured part (reload-under-load's signals). */
async function measure(env: Env, t: Target, s: Scenario, params: Params, round: number, during?: () => () => number): Promise<RunResult> {
  if (params.warmupS > 0) await loadOnce(t, s, params, params.warmupS);
  const cacheBefore = t.admin ? await xCacheCounts(t.admin) : undefined;
  const serverPids = t.proc.pids();
  const cpu0 = { server: cpuMs(serverPids), backend: cpuMs(env.backend.pids()), client: process.cpuUsage(), wall: performance.now() };
  const stopDuring = during?.();
  const durationS = s.run === 'reload' ? load.reloadForS : params.durationS;
  const r = await loadOnce(t, s, params, durationS);
  const sighups = stopDuring?.();
  const wallMs = performance.now() - cpu0.wall;
  const client = process.cpuUsage(cpu0.client);
  const pct = (ms: number) => Math.round((ms / wallMs) * 1000) / 10;
  // nginx's workers after a reload are new processes: rescan, and count only those still there (a lower bound).
  const serverMsRaw = cpuMs(t.proc.pids()) - cpu0.server;
  // Negative when processes that ran (nginx's workers retired by a reload) are gone: unknown.
  const serverMs = serverMsRaw >= 0 ? serverMsRaw : NaN;
  const { clientCpuMs, ...rest } = r;
  return {
    target: t.name,
    round,
    ...rest,
    serverCpuPct: pct(serverMs),
    serverCpuUsPerReq: r.requests ? Math.round((serverMs * 1000) / r.requests) : NaN,
    backendCpuPct: pct(cpuMs(env.backend.pids()) - cpu0.backend),
    clientCpuPct: pct(clientCpuMs ?? (client.user + client.system) / 1000),
    ...(t.admin && cacheBefore ? { xCache: diffCounts(await xCacheCounts(t.admin), cacheBefore) } : {}),
    ...(sighups !== undefined ? { sighups } : {}),
  };
}

const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
};

function medians(runs: RunResult[], targets: readonly TargetName[]): Median[] {
  return targets.map((name) => {
    const rs = runs.filter((r) => r.target === name);
    const m = (f: (r: RunResult) => number) => median(rs.map(f));
    return {
      target: name,
      reqPerS: m((r) => r.reqPerS),
      p50: m((r) => r.latencyMs.p50),
      p99: m((r) => r.latencyMs.p99),
      mbPerS: m((r) => r.mbPerS),
      serverCpuPct: m((r) => r.serverCpuPct),
      serverCpuUsPerReq: m((r) => r.serverCpuUsPerReq),
      clientCpuPct: m((r) => r.clientCpuPct),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
      ...(rs.some((r) => r.sighups !== undefined) ? { sighups: rs.reduce((n, r) => n + (r.sighups ?? 0), 0) } : {}),
    };
  });
}

/** Rounds of A B, B A, A B, ...: neither target always runs first (or right after a warm-up of the other). */
function alternate<T>(items: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

async function runLoad(env: Env, s: Scenario, params: Params): Promise<ScenarioResult> {
  const warnings: string[] = [];
  if (s.targets.includes('proxy-disk') && !HAS_DISK_TIER) {
    return { scenario: s.name, summary: s.summary, goal: s.goal, ratios: [{ label: s.name, ratio: NaN, goal: s.goal, note: 'no disk tier in this build' }], warnings: ['skipped: this build has no disk tier (cache.dir)'] };
  }
  if (s.prime) await prime(env, s, warnings);
  const runs: RunResult[] = [];
  for (let round = 0; round < params.rounds; round++) {
    for (const name of alternate(s.targets, round)) {
      process.stderr.write(`  ${s.name} round ${round + 1}/${params.rounds}: ${name}\n`);
      const t = target(env, name);
      let during: (() => () => number) | undefined;
      if (s.run === 'reload') {
        // SIGHUP to the process that owns reloads: our supervisor (or single process), nginx's master.
        during = () => {
          let sent = 0;
          const timer = setInterval(() => {
            if (signal(t.proc.pid, 'SIGHUP')) sent++;
          }, load.reloadEveryMs);
          return () => {
            clearInterval(timer);
            return sent;
          };
        };
      }
      runs.push(await measure(env, t, s, params, round, during));
    }
  }
  const ms = medians(runs, s.targets);
  const expected = s.versions === 'cycle' ? 'MISS' : 'HIT';
  for (const r of runs) {
    if (r.errors) warnings.push(`${r.target} round ${r.round + 1}: ${r.errors} errors (${r.timeouts} timeouts)`);
    if (r.non2xx) warnings.push(`${r.target} round ${r.round + 1}: ${r.non2xx} non-2xx answers`);
    const gone = Object.entries(r.xCache ?? {}).reduce((n, [k, v]) => (k.endsWith(' 499') ? n + v : n), 0);
    const other = Object.entries(r.xCache ?? {}).filter(([k]) => k !== `${expected} 200` && !(k.endsWith(' 499') && gone <= params.connections));
    if (other.length) warnings.push(`${r.target} round ${r.round + 1}: answers other than ${expected} 200: ${JSON.stringify(Object.fromEntries(other))}`);
  }
  const [ours, nginx] = ms;
  const ratio = ours && nginx ? ours.reqPerS / nginx.reqPerS : NaN;
  const note =
    s.run === 'reload'
      ? `errors+non-2xx: ours ${(ours?.errors ?? 0) + (ours?.non2xx ?? 0)}, nginx ${(nginx?.errors ?? 0) + (nginx?.non2xx ?? 0)} (${ours?.sighups ?? 0} / ${nginx?.sighups ?? 0} SIGHUPs)`
      : `${fmt(ours?.serverCpuUsPerReq ?? NaN)} vs ${fmt(nginx?.serverCpuUsPerReq ?? NaN)} µs CPU/req`;
  const subject = target(env, s.targets[0]).proc;
  return {
    scenario: s.name,
    summary: s.summary,
    goal: s.goal,
    runs,
    medians: ms,
    ratios: [{ label: s.name, ratio, goal: s.goal, note }],
    proxyRssBytes: subject.pids().reduce((n, pid) => n + (rssBytes(pid) ?? 0), 0),
    warnings,
  };
}

/** `count` concurrent GETs of `path`, each on its own connection; statuses, sha256 of each 200 body. */
async function burst(t: Target, path: string, count: number): Promise<{ status200: number; errors: number; hashes: Map<string, number>; wallMs: number }> {
  const started = performance.now();
  const hashes = new Map<string, number>();
  let status200 = 0;
  let errors = 0;
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const req = http.get(`${t.url}${path}`, { agent: false, timeout: 60_000 }, (res) => {
            const hash = createHash('sha256');
            res.on('data', (c: Buffer) => hash.update(c));
            res.on('end', () => {
              if (res.statusCode === 200) {
                status200++;
                const h = hash.digest('hex');
                hashes.set(h, (hashes.get(h) ?? 0) + 1);
              } else errors++;
              resolve();
            });
            res.on('error', () => {
              errors++;
              resolve();
            });
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', () => {
            errors++;
            resolve();
          });
        }),
    ),
  );
  return { status200, errors, hashes, wallMs: performance.now() - started };
}

async function runBurst(env: Env, s: Scenario, params: Params): Promise<ScenarioResult> {
  const warnings: string[] = [];
  const bursts: BurstRun[] = [];
  let n = 0;
  for (let round = 0; round < params.rounds; round++) {
    for (const name of alternate(s.targets, round)) {
      const t = target(env, name);
      const version = `v1.0.${n++ % BURST_VERSIONS}`;
      const path = goProxyPath(BURST_MODULE, version, 'zip');
      const internal = backendPath(BURST_MODULE, version, 'zip');
      process.stderr.write(`  ${s.name} round ${round + 1}/${params.rounds}: ${name} (${load.burstRequests} x ${path})\n`);
      const before = await backendCount(env, internal);
      const r = await burst(t, path, load.burstRequests);
      const backendRequests = (await backendCount(env, internal)) - before;
      const expected = createHash('sha256')
        .update((await get(env.backend.ready.url as string, internal)).body)
        .digest('hex');
      const run: BurstRun = { target: name, round, path, backendRequests, status200: r.status200, errors: r.errors, distinctSha256: r.hashes.size, sha256MatchesBackend: r.hashes.size === 1 && r.hashes.has(expected), wallMs: Math.round(r.wallMs) };
      bursts.push(run);
      if (run.errors || !run.sha256MatchesBackend) warnings.push(`${name} round ${round + 1}: ${run.errors} errors, ${run.distinctSha256} distinct sha256, matches backend: ${run.sha256MatchesBackend}`);
    }
  }
  const med = (name: TargetName, f: (b: BurstRun) => number) => median(bursts.filter((b) => b.target === name).map(f));
  const [ours, nginx] = s.targets;
  const max = (name: TargetName) => Math.max(...bursts.filter((b) => b.target === name).map((b) => b.backendRequests));
  return {
    scenario: s.name,
    summary: s.summary,
    bursts,
    // Wall time of the burst: nginx / ours (higher is better for us).
    ratios: [{ label: s.name, ratio: med(nginx ?? ours, (b) => b.wallMs) / med(ours, (b) => b.wallMs), note: `backend requests: ours max ${max(ours)}, nginx max ${nginx ? max(nginx) : '-'}` }],
    warnings,
  };
}

function backendCount(env: Env, path: string): Promise<number> {
  return env.backend.ask({ cmd: 'count', path }, (m) => ('count' in m && m.path === path ? m.count : undefined));
}

/** go-mod-download: a fresh server per (round, target, transport); cold, then warm, each with a new module cache. */
async function runGo(env: Env, s: Scenario, params: Params): Promise<ScenarioResult> {
  const warnings: string[] = [];
  const goRuns: GoRunResult[] = [];
  const backendUrl = env.backend.ready.url as string;
  const backendPort = Number(new URL(backendUrl).port);
  type Variant = { target: string; transport: 'http' | 'https'; http2?: boolean };
  const variants: Variant[] = [
    { target: 'proxy', transport: 'http' },
    { target: 'nginx', transport: 'http' },
    { target: 'proxy', transport: 'https', ...(HAS_HTTP2 ? { http2: false } : {}) },
    { target: 'nginx', transport: 'https' },
    ...(HAS_HTTP2 ? [{ target: 'proxy-h2', transport: 'https' as const, http2: true }] : []),
  ];
  let n = 0;
  for (let round = 0; round < params.rounds; round++) {
    for (const v of alternate(variants, round)) {
      const id = `go-${n++}`;
      process.stderr.write(`  ${s.name} round ${round + 1}/${params.rounds}: ${v.target} ${v.transport}\n`);
      let stop: () => Promise<void>;
      let goproxy: string;
      let caFile: string | undefined;
      if (v.target.startsWith('proxy')) {
        const config = proxyConfig(backendUrl, env.dir, { name: id, https: v.transport === 'https', accessLog: env.accessLog, workers: env.workers, cacheDir: join(env.dir, `${id}-cache`), ...(v.http2 !== undefined ? { http2: v.http2 } : {}) });
        const p = await startServe(id, proxyArgs(config), join(env.dir, `${id}.log`), join(env.dir, `${id}.err`));
        stop = () => p.stop();
        if (v.transport === 'https') {
          goproxy = `https://localhost:${new URL(p.ready.https as string).port}`;
          caFile = join(env.dir, 'tls', 'localhost.pem');
        } else goproxy = p.ready.http as string;
      } else {
        const nginx = await startNginx({ dir: join(env.dir, id), backendPort, tlsName: TLS_NAME, accessLog: env.accessLog, workers: env.workers });
        stop = () => nginx.stop();
        if (v.transport === 'https') {
          goproxy = `https://localhost:${new URL(nginx.httpsUrl).port}`;
          caFile = join(env.dir, id, 'ca.pem');
        } else goproxy = nginx.cachedUrl;
      }
      try {
        const cold = await goModDownload(goproxy, caFile);
        const warm = await goModDownload(goproxy, caFile);
        const ok = cold.ok && warm.ok;
        goRuns.push({ target: v.target, transport: v.transport, round, coldMs: Math.round(cold.wallMs), warmMs: Math.round(warm.wallMs), ok, ...(ok ? {} : { error: (cold.ok ? warm : cold).stderr }) });
        if (!ok) warnings.push(`${v.target} ${v.transport} round ${round + 1}: go mod download failed: ${(cold.ok ? warm : cold).stderr.slice(-500)}`);
      } finally {
        await stop();
      }
    }
  }
  const med = (target: string, transport: string, f: (g: GoRunResult) => number) => median(goRuns.filter((g) => g.target === target && g.transport === transport && g.ok).map(f));
  const ratios: ScenarioResult['ratios'] = [];
  for (const transport of ['http', 'https'] as const) {
    for (const phase of ['cold', 'warm'] as const) {
      const f = (g: GoRunResult) => (phase === 'cold' ? g.coldMs : g.warmMs);
      const ours = med('proxy', transport, f);
      const theirs = med('nginx', transport, f);
      ratios.push({ label: `go ${phase} ${transport}`, ratio: theirs / ours, goal: s.goal, note: `${(ours / 1000).toFixed(2)} s vs ${(theirs / 1000).toFixed(2)} s` });
    }
  }
  if (HAS_HTTP2) {
    for (const phase of ['cold', 'warm'] as const) {
      const f = (g: GoRunResult) => (phase === 'cold' ? g.coldMs : g.warmMs);
      const h2 = med('proxy-h2', 'https', f);
      ratios.push({ label: `go ${phase} https h2`, ratio: med('nginx', 'https', f) / h2, goal: s.goal, note: `h2 ${(h2 / 1000).toFixed(2)} s vs http/1.1 ${(med('proxy', 'https', f) / 1000).toFixed(2)} s` });
    }
  }
  return { scenario: s.name, summary: s.summary, goal: s.goal, goRuns, ratios, warnings };
}

/** bench/fill-memory.ts (the storage issue's), when this tree has it: its output is kept as it is. */
async function runExternal(s: Scenario): Promise<ScenarioResult> {
  const script = fileURLToPath(new URL('./fill-memory.ts', import.meta.url));
  if (!existsSync(script)) return { scenario: s.name, summary: s.summary, ratios: [], warnings: ['skipped: bench/fill-memory.ts is not in this tree'] };
  process.stderr.write(`  ${s.name}: node --import tsx bench/fill-memory.ts disk\n`);
  // Output into a file and 'exit', not 'close': a proxy it leaves behind (it
  // does not stop its child when it fails) would hold a pipe open forever.
  const outFile = join(os.tmpdir(), `gpr-bench-fill-memory-${process.pid}.out`);
  const fd = openSync(outFile, 'w');
  // The disk mode is the issue's target (peak RSS under 300 MiB with a disk tier).
  const child = spawn(process.execPath, ['--import', 'tsx', script, 'disk'], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const killer = setTimeout(() => child.kill('SIGKILL'), 900_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(killer);
  const out = `${readFileSync(outFile, 'utf8')}${code === 0 ? '' : `\n(exit ${code})`}`;
  rmSync(outFile, { force: true });
  return { scenario: s.name, summary: s.summary, ratios: [], external: out.trim(), warnings: [] };
}

const MiB = 1024 * 1024;
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');

function markdown(header: string[], rows: string[][], left = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < left ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i < left ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function tables(results: ScenarioResult[], params: Params): string {
  const out: string[] = [];
  const loadRows: string[][] = [];
  for (const s of results) {
    if (!s.medians) continue;
    const [ours, nginx] = s.medians;
    for (const m of s.medians) {
      const isOurs = m === ours;
      loadRows.push([
        isOurs ? s.scenario : '',
        m.target,
        fmt(m.reqPerS),
        fmt(m.p50, 1),
        fmt(m.p99, 1),
        fmt(m.mbPerS, 1),
        `${m.errors}/${m.non2xx}`,
        fmt(m.serverCpuPct),
        fmt(m.serverCpuUsPerReq),
        fmt(m.clientCpuPct),
        isOurs && nginx ? `${fmt(m.reqPerS / nginx.reqPerS, 2)}x` : '',
        isOurs && nginx ? `${fmt(m.serverCpuUsPerReq / nginx.serverCpuUsPerReq, 2)}x` : '',
        isOurs && s.goal !== undefined && s.run !== 'reload' ? `${s.goal}x ${nginx && m.reqPerS / nginx.reqPerS >= s.goal ? 'met' : 'MISSED'}` : '',
      ]);
    }
  }
  if (loadRows.length) {
    out.push(`Medians of ${params.rounds} rounds (${params.warmupS} s warm-up + ${params.durationS} s each, targets alternating), ${params.workers} workers each:`, '');
    out.push(markdown(['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'MB/s', 'err/non-2xx', 'srv CPU%', 'srv µs/req', 'client CPU%', 'x req/s', 'x µs/req', 'goal'], loadRows));
    out.push('', 'x req/s = ours / nginx (higher is better); x µs/req = ours / nginx server CPU per request (lower is better). err/non-2xx summed over the rounds.');
  }
  for (const s of results) {
    if (s.bursts) {
      out.push('', `${s.scenario}: ${load.burstRequests} concurrent GETs of one cold zip, a new version per run`, '');
      out.push(markdown(['target', 'round', 'backend requests', '200s', 'errors', 'distinct sha256', 'sha256 = backend', 'wall ms'], s.bursts.map((b) => [b.target, String(b.round + 1), String(b.backendRequests), String(b.status200), String(b.errors), String(b.distinctSha256), String(b.sha256MatchesBackend), fmt(b.wallMs)])));
    }
    if (s.goRuns) {
      out.push('', `${s.scenario}: go mod download of ${allModuleVersions.length} module versions, fresh server per run (cold), then again with a new module cache (warm)`, '');
      const keys = [...new Set(s.goRuns.map((g) => `${g.target} ${g.transport}`))];
      out.push(
        markdown(
          ['target', 'transport', 'cold s (median)', 'warm s (median)', 'runs ok'],
          keys.map((k) => {
            const rs = s.goRuns?.filter((g) => `${g.target} ${g.transport}` === k) ?? [];
            const ok = rs.filter((g) => g.ok);
            return [k.split(' ')[0] ?? k, k.split(' ')[1] ?? '', fmt(median(ok.map((g) => g.coldMs)) / 1000, 2), fmt(median(ok.map((g) => g.warmMs)) / 1000, 2), `${ok.length}/${rs.length}`];
          }),
        ),
      );
    }
    if (s.external) out.push('', `${s.scenario}:`, '', '```', s.external, '```');
  }
  out.push('', 'Ratios (ours / nginx, higher is better; go-mod-download and coalesce-burst: nginx time / ours):', '');
  out.push(markdown(['scenario', 'ratio', 'goal', 'note'], results.flatMap((s) => s.ratios.map((r) => [r.label, Number.isFinite(r.ratio) ? `${fmt(r.ratio, 2)}x` : '-', r.goal !== undefined ? `${r.goal}x` : '', r.note ?? ''])), 1));
  for (const s of results) {
    if (s.proxyRssBytes) out.push(`${s.scenario}: proxy RSS (all processes) after the scenario ${fmt(s.proxyRssBytes / MiB, 1)} MiB`);
    for (const w of s.warnings) out.push(`${s.scenario}: WARNING ${w}`);
  }
  return out.join('\n');
}

function machine(): { nproc: number; cpu: string; node: string; nginx: string; kernel: string; loadavgAtStart: number[]; commit: string } {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  let commit = '?';
  try {
    commit = execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    /* not a git checkout */
  }
  return { nproc: os.availableParallelism(), cpu, node: process.version, nginx: nginxVersion(), kernel: os.release(), loadavgAtStart: os.loadavg(), commit };
}

function budgetMs(selected: readonly Scenario[], params: Params): number {
  let s = 0;
  for (const sc of selected) {
    const per = sc.run === 'go' ? 5 * 90 : sc.run === 'burst' ? 2 * 60 : sc.run === 'external' ? 600 : sc.targets.length * (params.warmupS + (sc.run === 'reload' ? load.reloadForS : params.durationS) + 10);
    s += sc.run === 'external' ? per : per * params.rounds;
  }
  return s * 1000 + load.watchdogSlackMs;
}

async function main(): Promise<void> {
  const { names, params, keep, cpuProf, accessLog } = parseCli();
  const selected = scenarios.filter((s) => names.includes(s.name));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const meta = { date: new Date().toISOString(), machine: machine(), params, accessLog, command, hasDiskTier: HAS_DISK_TIER, hasHttp2: HAS_HTTP2 };
  const dir = mkdtempSync(join(os.tmpdir(), 'gpr-bench-'));

  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= stopAll().finally(() => {
      if (keep) process.stderr.write(`kept ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    }));
  const abort = (why: string, code: number) => {
    process.stderr.write(`bench: ${why}; stopping every child process\n`);
    void cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => abort('SIGINT', 130));
  process.once('SIGTERM', () => abort('SIGTERM', 143));
  const budget = budgetMs(selected, params);
  const watchdog = setTimeout(() => abort(`watchdog: still running after ${Math.round(budget / 1000)} s`, 2), budget);

  try {
    process.stderr.write(`bench: ${selected.map((s) => s.name).join(', ')}; ${params.workers} workers each; ${params.rounds} rounds of ${params.warmupS}s warm-up + ${params.durationS}s; ${params.connections} connections; scratch ${dir}\n`);
    const stamp = meta.date.replace(/[:.]/g, '-');
    mkdirSync(RESULTS_DIR, { recursive: true });
    const env = await startEnv(selected, dir, accessLog, params.workers, cpuProf ? stamp : undefined);
    const results: ScenarioResult[] = [];
    for (const s of selected) {
      if (s.run === 'load' || s.run === 'handshake' || s.run === 'reload') results.push({ ...(await runLoad(env, s, params)), run: s.run });
      else if (s.run === 'burst') results.push(await runBurst(env, s, params));
      else if (s.run === 'go') results.push(await runGo(env, s, params));
      else results.push(await runExternal(s));
    }

    const finished = { loadavgAtEnd: os.loadavg() };
    const load1 = (l: number[]) => (l[0] ?? NaN).toFixed(2);
    process.stdout.write(
      `\n${tables(results, params)}\n\n1-min load average at start ${load1(meta.machine.loadavgAtStart)}, at end ${load1(finished.loadavgAtEnd)} on ${meta.machine.nproc} CPUs; the bench itself keeps them busy, so other work shared the cores if the start value was well above 0.\n`,
    );
    for (const r of results) writeFileSync(join(RESULTS_DIR, `${stamp}-${r.scenario}.json`), JSON.stringify({ ...meta, ...finished, ...r }, null, 2) + '\n');
    writeFileSync(join(RESULTS_DIR, 'latest.json'), JSON.stringify({ ...meta, ...finished, scenarios: results }, null, 2) + '\n');
    const svg = renderChart(
      `go-proxy-rewriter / nginx, ${params.workers} workers each (higher is better)`,
      results.flatMap((r) => r.ratios),
      [`${meta.date.slice(0, 16).replace('T', ' ')} UTC; ${meta.machine.nproc} × ${meta.machine.cpu}; Node ${meta.machine.node}; ${meta.machine.nginx}; ${meta.machine.commit}`, `${command}; medians of ${params.rounds} rounds; 1-min load average ${load1(meta.machine.loadavgAtStart)} at start (shared machine: noisy)`],
    );
    writeFileSync(join(RESULTS_DIR, `${stamp}-ratios.svg`), svg);
    writeFileSync(CHART_FILE, svg);
    process.stderr.write(`wrote bench/results/${stamp}-*.json, bench/results/latest.json and ${CHART_FILE}\n`);
    if (cpuProf) {
      await stopAll(); // a child writes its profile as it exits
      for (const name of ['proxy', 'proxy-miss', 'proxy-disk']) {
        const profDir = join(RESULTS_DIR, `${stamp}-${name}-cpuprofile`);
        if (!existsSync(profDir)) continue;
        // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is a main thread; with workers
        // there is one per process, and the largest is the busiest worker's.
        const mains = readdirSync(profDir).filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
        const main = mains.sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size)[0];
        if (main) process.stdout.write(`\n${name}: top self time over its whole life, idle excluded (bench/results/${stamp}-${name}-cpuprofile/${main})\n${profileSummary(join(profDir, main))}\n`);
      }
    }
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
}

main().catch(async (err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`bench: ${err.message} (see --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exit(1);
});
