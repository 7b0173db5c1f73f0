/**
 * @module bench/run
 * `npm run bench [-- scenario ...] [--duration S] [--warmup S] [--connections N] [--keep] [--cpu-prof] [--no-access-log]`
 * Starts the fixture backend, the proxy (compiled, dist/) and the baselines
 * (node-minimal, nginx) as child processes on 127.0.0.1, waits until each is
 * ready, primes the caches, then runs every selected scenario against its
 * subject and baselines in this one invocation (warm-up, then the measured
 * run), prints a table with the subject/baseline ratios and the proxy's
 * memory, and writes bench/results/<date>-<scenario>.json and latest.json.
 * Every process it started is stopped by PID at the end, on error, on
 * SIGINT/SIGTERM and when the watchdog fires.
 * Must not: send traffic anywhere but 127.0.0.1, or leave a process behind.
 */
import autocannon from 'autocannon';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { runHandshakes } from './handshakes.js';
import { nginxVersion, startNginx, type Nginx } from './nginx.js';
import { cpuMs, proxyArgs, rssBytes, serveArgs, startServe, stopAll, type Proc, type ServeChild } from './procs.js';
import {
  BENCH_VERSION,
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
import type { MinimalSpec } from './serve.js';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

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
}

/** One measured run of one target. */
interface RunResult {
  target: TargetName;
  reqPerS: number;
  requests: number;
  durationS: number;
  latencyMs: { p50: number; p99: number; mean: number };
  /** Response bytes per second (headers included), MB = 1e6 bytes. */
  mbPerS: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  /** CPU of the target's server process(es), % of one core. */
  serverCpuPct: number;
  /** Server CPU time per answered request, µs: steadier than req/s when other load shares the cores. */
  serverCpuUsPerReq: number;
  /** CPU of the fixture backend, % of one core. */
  backendCpuPct: number;
  /** CPU of this process (the load generator), % of one core. */
  clientCpuPct: number;
  /** Proxy targets: answers by X-Cache, from the proxy's /metrics. */
  xCache?: Record<string, number>;
  /** tls-handshakes only: connect to secureConnect. */
  handshakeMs?: { p50: number; p99: number };
}

interface MemorySample {
  /** /proc/PID/status VmRSS, bytes, as the load left it. */
  rssBytes: number | undefined;
  /** VmRSS again right after the full GC. */
  rssAfterGcBytes: number | undefined;
  /** heapUsed after a full GC, bytes. */
  heapUsedBytes: number;
  externalBytes: number;
}

interface ScenarioResult {
  scenario: string;
  summary: string;
  params: Params;
  subject: TargetName;
  runs: RunResult[];
  /** Subject over each baseline: req/s (higher is better), p99 and server CPU per request (lower is better). */
  ratios: Array<{ baseline: TargetName; reqPerS: number; p99: number; cpuPerReq: number }>;
  /** The proxy instance of the subject, before the first and after the last run. */
  proxyMemory: { before: MemorySample; after: MemorySample };
  /** Anything that makes the numbers suspect: errors, non-2xx, a cache status other than expected. */
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
  backend: ServeChild;
  proxy?: ServeChild;
  proxyCa?: string;
  proxyMiss?: ServeChild;
  nginx?: Nginx;
  /** Per scenario, started after priming. */
  minimal?: ServeChild;
}

function parseCli(): { names: string[]; params: Params; keep: boolean; cpuProf: boolean; accessLog: boolean } {
  const parse = () =>
    parseArgs({
      allowPositionals: true,
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
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
      `usage: npm run bench [-- scenario ...] [--duration S] [--warmup S] [--connections N] [--keep] [--cpu-prof] [--no-access-log]\nscenarios:\n${scenarios.map((s) => `  ${s.name.padEnd(15)} ${s.summary}`).join('\n')}\n`,
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

function proxyConfig(backendUrl: string, dir: string, opts: { https: boolean; accessLog: boolean; cache?: { maxBytes: number; maxEntryBytes: number } }): string {
  const file = join(dir, opts.cache ? 'proxy-miss.json' : 'proxy.json');
  const config = {
    listen: { http: '127.0.0.1:0', https: opts.https ? '127.0.0.1:0' : null, admin: '127.0.0.1:0' },
    upstream: backendUrl,
    rewrite: 'internal',
    ...(opts.cache ? { cache: opts.cache } : {}),
    tls: { dir: join(dir, 'tls'), hosts: [TLS_NAME] },
    shutdown: { drainTimeoutMs: 2_000 },
    // info writes the access line of every request (the production default); warn has none.
    log: { level: opts.accessLog ? 'info' : 'warn' },
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
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

async function startEnv(selected: readonly Scenario[], dir: string, accessLog: boolean, profStamp?: string): Promise<Env> {
  const need = new Set(selected.flatMap((s) => s.targets));
  const backend = await startServe('backend', serveArgs('backend'), join(dir, 'backend.out'), join(dir, 'backend.err'));
  const backendUrl = backend.ready.url as string;
  const env: Env = { dir, backend };
  const wants = (...names: TargetName[]) => names.some((n) => need.has(n));
  const starts: Array<Promise<unknown>> = [];
  if (wants('proxy', 'proxy-https')) {
    const config = proxyConfig(backendUrl, dir, { https: need.has('proxy-https'), accessLog });
    starts.push(
      startServe('proxy', proxyArgs(config, cpuProfArgs(profStamp, 'proxy')), join(dir, 'proxy.log'), join(dir, 'proxy.err')).then((p) => {
        env.proxy = p;
        if (need.has('proxy-https')) env.proxyCa = readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8');
      }),
    );
  }
  if (wants('proxy-miss')) {
    const config = proxyConfig(backendUrl, dir, { https: false, accessLog, cache: MISS_CACHE });
    starts.push(startServe('proxy-miss', proxyArgs(config, cpuProfArgs(profStamp, 'proxy-miss')), join(dir, 'proxy-miss.log'), join(dir, 'proxy-miss.err')).then((p) => (env.proxyMiss = p)));
  }
  if (wants('nginx', 'nginx-https', 'nginx-nocache')) {
    const port = Number(new URL(backendUrl).port);
    starts.push(startNginx({ dir: join(dir, 'nginx'), backendPort: port, tlsName: TLS_NAME, accessLog }).then((n) => (env.nginx = n)));
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

/** Fills the caches of every caching target and checks the next answer is a HIT; starts node-minimal with the proxy's HIT bytes. */
async function prime(env: Env, s: Scenario, warnings: string[]): Promise<void> {
  const path = goProxyPath(s.module, BENCH_VERSION, s.kind);
  let hit: { status: number; headers: IncomingHttpHeaders; body: Buffer } | undefined;
  for (const name of s.targets) {
    if (name === 'node-minimal' || name === 'backend-direct') continue;
    const t = target(env, name);
    await get(t.url, path, t.ca);
    const second = await get(t.url, path, t.ca);
    if (second.status !== 200 || second.headers['x-cache'] !== 'HIT') {
      warnings.push(`${name}: primed ${path} answered ${second.status} X-Cache ${String(second.headers['x-cache'])}, expected 200 HIT`);
    }
    if (name === 'proxy') hit = second;
  }
  if (!s.targets.includes('node-minimal')) return;
  hit ??= await get(target(env, 'proxy').url, path);
  const headers: Record<string, string> = {};
  // Node adds its own date, connection and keep-alive, as it does for the proxy.
  for (const [k, v] of Object.entries(hit.headers)) if (typeof v === 'string' && !['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(k)) headers[k] = v;
  const bodyFile = join(env.dir, `minimal-${s.name}.body`);
  writeFileSync(bodyFile, hit.body);
  const spec: MinimalSpec = { status: hit.status, headers, bodyFile };
  const specFile = join(env.dir, `minimal-${s.name}.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  env.minimal = await startServe('node-minimal', serveArgs('minimal', specFile), join(env.dir, 'minimal.out'), join(env.dir, 'minimal.err'));
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

async function measure(env: Env, t: Target, s: Scenario, params: Params): Promise<RunResult> {
  const handshake = s.transport === 'handshake';
  const runOnce = async (durationS: number) => {
    if (!handshake) return cannon(t, s, params, durationS);
    const { port, hostname } = new URL(t.url);
    return runHandshakes({
      host: hostname,
      port: Number(port),
      servername: TLS_NAME,
      ca: t.ca ?? '',
      path: pathOf(t, s, BENCH_VERSION),
      connections: params.connections,
      durationS,
      timeoutMs: load.timeoutS * 1000,
    });
  };
  if (params.warmupS > 0) await runOnce(params.warmupS);

  const cacheBefore = t.admin ? await xCacheCounts(t.admin) : undefined;
  const serverPids = t.proc.pids();
  const cpu0 = { server: cpuMs(serverPids), backend: cpuMs(env.backend.pids()), client: process.cpuUsage(), wall: performance.now() };
  const r = await runOnce(params.durationS);
  const wallMs = performance.now() - cpu0.wall;
  const client = process.cpuUsage(cpu0.client);
  const pct = (ms: number) => Math.round((ms / wallMs) * 1000) / 10;
  const serverMs = cpuMs(serverPids) - cpu0.server;
  const answered = 'handshakeMs' in r ? r.requests : r.requests.total;
  const common = {
    target: t.name,
    serverCpuPct: pct(serverMs),
    serverCpuUsPerReq: answered ? Math.round((serverMs * 1000) / answered) : NaN,
    backendCpuPct: pct(cpuMs(env.backend.pids()) - cpu0.backend),
    clientCpuPct: pct((client.user + client.system) / 1000),
    ...(t.admin && cacheBefore ? { xCache: diffCounts(await xCacheCounts(t.admin), cacheBefore) } : {}),
  };
  if ('handshakeMs' in r) {
    return { ...common, reqPerS: r.requests / r.durationS, requests: r.requests, durationS: r.durationS, latencyMs: r.latencyMs, mbPerS: r.bytes / r.durationS / 1e6, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, statusCodes: r.statusCodes, handshakeMs: r.handshakeMs };
  }
  const statusCodes: Record<string, number> = {};
  for (const [code, v] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = v.count ?? 0;
  return {
    ...common,
    reqPerS: r.requests.total / r.duration,
    requests: r.requests.total,
    durationS: r.duration,
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99, mean: r.latency.mean },
    mbPerS: r.throughput.total / r.duration / 1e6,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    statusCodes,
  };
}

async function memory(proc: ServeChild): Promise<MemorySample> {
  const rss = rssBytes(proc.pid);
  const m = await proc.memory();
  return { rssBytes: rss, rssAfterGcBytes: rssBytes(proc.pid), heapUsedBytes: m.heapUsed, externalBytes: m.external };
}

async function runScenario(env: Env, s: Scenario, params: Params): Promise<ScenarioResult> {
  const warnings: string[] = [];
  if (s.prime) await prime(env, s, warnings);
  const subjectProc = target(env, s.targets[0]).proc as ServeChild;
  const before = await memory(subjectProc);
  const runs: RunResult[] = [];
  try {
    for (const name of s.targets) {
      process.stderr.write(`  ${s.name}: ${name} (${params.warmupS}s warm-up + ${params.durationS}s)\n`);
      runs.push(await measure(env, target(env, name), s, params));
    }
  } finally {
    if (env.minimal) {
      await env.minimal.stop();
      env.minimal = undefined;
    }
  }
  const after = await memory(subjectProc);
  const subject = runs[0] as RunResult;
  const expected = s.versions === 'cycle' ? 'MISS' : 'HIT';
  for (const r of runs) {
    if (r.errors) warnings.push(`${r.target}: ${r.errors} errors (${r.timeouts} timeouts)`);
    if (r.non2xx) warnings.push(`${r.target}: ${r.non2xx} non-2xx answers ${JSON.stringify(r.statusCodes)}`);
    // autocannon closes its connections at the end of a run with requests in
    // flight: up to one 499 (client gone) per connection is the run stopping.
    const gone = Object.entries(r.xCache ?? {}).reduce((n, [k, v]) => (k.endsWith(' 499') ? n + v : n), 0);
    const other = Object.entries(r.xCache ?? {}).filter(([k]) => k !== `${expected} 200` && !(k.endsWith(' 499') && gone <= params.connections));
    if (other.length) warnings.push(`${r.target}: answers other than ${expected} 200: ${JSON.stringify(Object.fromEntries(other))}`);
  }
  return {
    scenario: s.name,
    summary: s.summary,
    params,
    subject: subject.target,
    runs,
    ratios: runs.slice(1).map((b) => ({
      baseline: b.target,
      reqPerS: subject.reqPerS / b.reqPerS,
      p99: b.latencyMs.p99 ? subject.latencyMs.p99 / b.latencyMs.p99 : NaN,
      cpuPerReq: subject.serverCpuUsPerReq / b.serverCpuUsPerReq,
    })),
    proxyMemory: { before, after },
    warnings,
  };
}

const MiB = 1024 * 1024;
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');

function table(results: ScenarioResult[]): string {
  const header = ['scenario', 'target', 'req/s', 'p50 ms', 'p99 ms', 'MB/s', 'errors', 'non-2xx', 'x req/s', 'x p99', 'srv CPU%', 'srv µs/req', 'x µs/req', 'backend CPU%', 'client CPU%', 'X-Cache'];
  const rows: string[][] = [];
  for (const s of results) {
    for (const r of s.runs) {
      const ratio = s.ratios.find((x) => x.baseline === r.target);
      const answers = Object.values(r.xCache ?? {}).reduce((a, b) => a + b, 0);
      const cache = Object.entries(r.xCache ?? {})
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k.replace(' ', '/')} ${v === answers ? '100' : fmt((v / answers) * 100, v / answers > 0.999 ? 2 : 1)}%`)
        .join(', ');
      rows.push([
        r === s.runs[0] ? s.scenario : '',
        r.target,
        fmt(r.reqPerS),
        fmt(r.latencyMs.p50, 1),
        fmt(r.latencyMs.p99, 1),
        fmt(r.mbPerS, 1),
        String(r.errors),
        String(r.non2xx),
        ratio ? `${fmt(ratio.reqPerS, 2)}x` : '(subject)',
        ratio ? `${fmt(ratio.p99, 2)}x` : '',
        fmt(r.serverCpuPct),
        fmt(r.serverCpuUsPerReq),
        ratio ? `${fmt(ratio.cpuPerReq, 2)}x` : '',
        fmt(r.backendCpuPct),
        fmt(r.clientCpuPct),
        cache,
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i < 2 || i === cells.length - 1 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const out = [line(header), `|${widths.map((w, i) => (i < 2 || i === widths.length - 1 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`, ...rows.map(line)];
  out.push(
    '',
    'x req/s = subject req/s / this baseline (higher is better); x p99 and x µs/req = subject / this baseline (lower is better).',
    'srv µs/req = CPU time of the target server process(es) per answered request: the steadiest column when other load shares the cores.',
  );
  for (const s of results) {
    const { before, after } = s.proxyMemory;
    const mb = (b: number | undefined) => (b === undefined ? '?' : fmt(b / MiB, 1));
    out.push(
      `${s.scenario}: ${s.subject} RSS ${mb(before.rssBytes)} -> ${mb(after.rssBytes)} MiB (after GC ${mb(before.rssAfterGcBytes)} -> ${mb(after.rssAfterGcBytes)}); heap after GC ${mb(before.heapUsedBytes)} -> ${mb(after.heapUsedBytes)} MiB; external ${mb(before.externalBytes)} -> ${mb(after.externalBytes)} MiB`,
    );
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

async function main(): Promise<void> {
  const { names, params, keep, cpuProf, accessLog } = parseCli();
  const selected = scenarios.filter((s) => names.includes(s.name));
  const meta = { date: new Date().toISOString(), machine: machine(), params, accessLog };
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
  const runs = selected.reduce((n, s) => n + s.targets.length, 0);
  const budgetMs = runs * (params.warmupS + params.durationS + 5) * 1000 + load.watchdogSlackMs;
  const watchdog = setTimeout(() => abort(`watchdog: still running after ${Math.round(budgetMs / 1000)} s`, 2), budgetMs);

  try {
    process.stderr.write(`bench: ${selected.map((s) => s.name).join(', ')}; ${params.connections} connections, ${params.warmupS}s warm-up + ${params.durationS}s per target; scratch ${dir}\n`);
    const stamp = meta.date.replace(/[:.]/g, '-');
    mkdirSync(RESULTS_DIR, { recursive: true });
    const env = await startEnv(selected, dir, accessLog, cpuProf ? stamp : undefined);
    const results: ScenarioResult[] = [];
    for (const s of selected) results.push(await runScenario(env, s, params));

    const finished = { loadavgAtEnd: os.loadavg() };
    const load1 = (l: number[]) => (l[0] ?? NaN).toFixed(2);
    process.stdout.write(
      `\n${table(results)}\n1-min load average at start ${load1(meta.machine.loadavgAtStart)}, at end ${load1(finished.loadavgAtEnd)} on ${meta.machine.nproc} CPUs; the bench itself keeps ~2 busy, so other work shared the cores if the start value was well above 0.\n`,
    );
    for (const r of results) writeFileSync(join(RESULTS_DIR, `${stamp}-${r.scenario}.json`), JSON.stringify({ ...meta, ...finished, ...r }, null, 2) + '\n');
    writeFileSync(join(RESULTS_DIR, 'latest.json'), JSON.stringify({ ...meta, ...finished, scenarios: results }, null, 2) + '\n');
    process.stderr.write(`wrote bench/results/${stamp}-*.json and bench/results/latest.json\n`);
    if (cpuProf) {
      await stopAll(); // a child writes its profile as it exits
      for (const name of ['proxy', 'proxy-miss']) {
        const profDir = join(RESULTS_DIR, `${stamp}-${name}-cpuprofile`);
        if (!existsSync(profDir)) continue;
        // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread, the one serving requests.
        const main = readdirSync(profDir).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
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
