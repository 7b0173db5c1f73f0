/**
 * @module bench/tls-ceiling
 * How much of the proxy's gap to nginx on a cached `.info` over keep-alive
 * TLS is Node's own TLS and HTTP stack: a bare `node:https` server answering
 * the proxy's HIT bytes (same status, headers and body; bench/serve.ts
 * `minimal` with `tls`) against nginx over TLS and the proxy over TLS, same
 * client (autocannon), same run, rounds alternating, medians.
 *   node --import tsx bench/tls-ceiling.ts [--duration 3] [--warmup 1] [--rounds 3] [--connections 50]
 *     [--workers 1] [--no-access-log] [--ciphers TLS_AES_128_GCM_SHA256] [--keep]
 * `--workers` is the proxy's `workers` and nginx's worker_processes; the bare
 * server is always one process, so the default is 1 for all three. The bare
 * server uses nginx's certificate and key (P-256, like the proxy's minted
 * leaves). It prints the protocol and cipher each server negotiates with the
 * client's offer (`--ciphers` narrows the offer, e.g. to compare AES-GCM with
 * ChaCha20), then req/s and server CPU µs per request.
 * Must not: send traffic anywhere but 127.0.0.1.
 */
import autocannon from 'autocannon';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import { startNginx } from './nginx.js';
import { cpuMs, proxyArgs, serveArgs, startServe, stopAll, type Proc } from './procs.js';
import { BENCH_VERSION, HIT_MODULE, TLS_NAME, goProxyPath } from './scenarios.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string', default: '1' },
    'no-access-log': { type: 'boolean', default: false },
    ciphers: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const workers = Number(values.workers);
const accessLog = !values['no-access-log'];
const ciphers = values.ciphers;
const PATH = goProxyPath(HIT_MODULE, BENCH_VERSION, 'info');

interface Target {
  name: string;
  url: string;
  ca: string;
  proc: Proc;
}

function get(url: string, ca: string): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.get(url + PATH, { ca, servername: TLS_NAME, headers: { host: TLS_NAME }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
  });
}

/** The protocol and cipher the server picks for the client's offer. */
function negotiated(t: Target): Promise<string> {
  const { hostname, port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: hostname, port: Number(port), servername: TLS_NAME, ca: t.ca, ...(ciphers ? { ciphers } : {}) }, () => {
      resolve(`${s.getProtocol() ?? '?'} ${s.getCipher().standardName}`);
      s.end();
    });
    s.on('error', reject);
  });
}

async function load(t: Target, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: t.url,
    connections,
    pipelining: 1,
    duration: seconds,
    requests: [{ method: 'GET', path: PATH }],
    headers: { host: TLS_NAME },
    servername: TLS_NAME,
    tlsOptions: { ca: t.ca, ...(ciphers ? { ciphers } : {}) },
  } as autocannon.Options);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-tls-ceiling-'));
  const watchdog = setTimeout(() => {
    process.stderr.write('tls-ceiling: watchdog expired\n');
    void stopAll().then(() => process.exit(1));
  }, (rounds * 3 * (durationS + warmupS) + 120) * 1000);
  try {
    const backend = await startServe('backend', serveArgs('backend'), join(dir, 'backend.out'), join(dir, 'backend.err'));
    const backendUrl = backend.ready.url as string;
    const nginx = await startNginx({ dir: join(dir, 'nginx'), backendPort: Number(new URL(backendUrl).port), tlsName: TLS_NAME, accessLog, workers });
    const config = {
      listen: { http: null, https: '127.0.0.1:0', admin: '127.0.0.1:0' },
      upstream: backendUrl,
      rewrite: 'internal',
      workers,
      cache: { dir: null },
      tls: { dir: join(dir, 'tls'), hosts: [TLS_NAME] },
      log: { level: accessLog ? 'info' : 'warn' },
    };
    writeFileSync(join(dir, 'proxy.json'), JSON.stringify(config));
    const proxy = await startServe('proxy', proxyArgs(join(dir, 'proxy.json')), join(dir, 'proxy.log'), join(dir, 'proxy.err'));
    const proxyT: Target = { name: 'proxy-https', url: proxy.ready.https as string, ca: readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8'), proc: proxy };
    const nginxT: Target = { name: 'nginx-https', url: nginx.httpsUrl, ca: nginx.caPem, proc: nginx };
    // Prime both caches (every worker), then copy the proxy's HIT answer for the bare server.
    let hit = await get(proxyT.url, proxyT.ca);
    for (let i = 0; i < 4 * workers; i++) {
      hit = await get(proxyT.url, proxyT.ca);
      await get(nginxT.url, nginxT.ca);
    }
    if (hit.status !== 200 || hit.headers['x-cache'] !== 'HIT') throw new Error(`proxy answered ${hit.status} X-Cache ${hit.headers['x-cache']}, expected 200 HIT`);
    const headers = Object.fromEntries(Object.entries(hit.headers).filter(([k]) => !['date', 'connection', 'keep-alive'].includes(k)));
    writeFileSync(join(dir, 'body'), hit.body);
    const spec = { status: 200, headers, bodyFile: join(dir, 'body'), tls: { cert: join(dir, 'nginx', 'leaf.pem'), key: join(dir, 'nginx', 'leaf-key.pem') } };
    writeFileSync(join(dir, 'minimal.json'), JSON.stringify(spec));
    const minimal = await startServe('node-minimal-https', serveArgs('minimal', join(dir, 'minimal.json')), join(dir, 'minimal.out'), join(dir, 'minimal.err'));
    const minimalT: Target = { name: 'node-minimal-https', url: minimal.ready.url as string, ca: nginx.caPem, proc: minimal };
    const targets = [proxyT, minimalT, nginxT];

    for (const t of targets) process.stdout.write(`${t.name.padEnd(20)} negotiates ${await negotiated(t)}\n`);
    const results = new Map(targets.map((t) => [t.name, { rps: [] as number[], us: [] as number[], errors: 0 }]));
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        await load(t, warmupS);
        const pids = t.proc.pids();
        const before = cpuMs(pids);
        const res = await load(t, durationS);
        const cpu = cpuMs(pids) - before;
        const n = res.requests.total;
        const out = results.get(t.name)!;
        out.rps.push(n / durationS);
        out.us.push((cpu * 1000) / Math.max(n, 1));
        out.errors += res.errors + res.non2xx;
      }
    }
    const nginxRps = median(results.get('nginx-https')!.rps);
    process.stdout.write(`\nMedians of ${rounds} rounds (${warmupS} s warm-up + ${durationS} s), ${connections} connections, workers ${workers}, access log ${accessLog ? 'on' : 'off'}${ciphers ? `, ciphers ${ciphers}` : ''}:\n`);
    process.stdout.write('| target | req/s | x nginx | srv µs/req | errors |\n|---|--:|--:|--:|--:|\n');
    for (const t of targets) {
      const r = results.get(t.name)!;
      process.stdout.write(`| ${t.name} | ${median(r.rps).toFixed(0)} | ${(median(r.rps) / nginxRps).toFixed(2)}x | ${median(r.us).toFixed(1)} | ${r.errors} |\n`);
    }
  } finally {
    clearTimeout(watchdog);
    await stopAll();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`kept ${dir}\n`);
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`tls-ceiling failed: ${(err as Error).stack ?? String(err)}\n`);
  await stopAll();
  process.exit(1);
});
