/**
 * @module bench/profile-miss
 * `node --import tsx bench/profile-miss.ts [--requests N] [--connections C] [--no-prof] [--disk] [--save-prof FILE]`
 * The proxy's MISS path alone, as `miss-info` drives it (every request a new
 * `.info` of the fixture backend, cache bounded so nothing is ever a hit,
 * access log on; memory tier only unless --disk), with the proxy under `--cpu-prof`: prints the proxy's CPU
 * per request (its own process_cpu_seconds_total before and after, so this
 * client's cost is not in it) and the functions with the most self time.
 * Sends a bounded number of requests to loopback only.
 * Must not: start nginx or run the bench suite (bench/run.ts does).
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { proxyArgs, serveArgs, startServe, stopAll } from './procs.js';
import { MISS_CACHE, MISS_MODULE, missVersion } from './scenarios.js';

async function cpuSeconds(admin: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const m = /^gpr_process_cpu_seconds_total (\S+)$/m.exec(text);
  if (!m) throw new Error('no gpr_process_cpu_seconds_total in /metrics');
  return Number(m[1]);
}

function topSelf(file: string, top: number): string {
  type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[] };
  const self = new Map<string, number>();
  let total = 0;
  for (const n of profile.nodes) {
    if (n.callFrame.functionName === '(idle)') continue;
    total += n.hitCount ?? 0;
    const where = n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(dist|src)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : '';
    const key = `${n.callFrame.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
  }
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `  ${((v / (total || 1)) * 100).toFixed(1).padStart(5)}%  ${k}`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, connections: { type: 'string', default: '32' }, 'no-prof': { type: 'boolean', default: false }, disk: { type: 'boolean', default: false }, 'save-prof': { type: 'string' } } });
  const total = Number(values.requests);
  const connections = Number(values.connections);
  const dir = mkdtempSync(join(os.tmpdir(), 'gpr-profile-miss-'));
  const profDir = join(dir, 'prof');
  const watchdog = setTimeout(() => void stopAll().finally(() => process.exit(2)), 300_000);
  try {
    const backend = await startServe('backend', serveArgs('backend'), join(dir, 'backend.out'), join(dir, 'backend.err'));
    const config = join(dir, 'proxy.json');
    writeFileSync(config, JSON.stringify({ listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' }, upstream: backend.ready.url, rewrite: 'internal', cache: { ...MISS_CACHE, ...(values.disk ? {} : { dir: null }) }, log: { level: 'info' } }));
    const proxy = await startServe('proxy', proxyArgs(config, values['no-prof'] ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`]), join(dir, 'proxy.log'), join(dir, 'proxy.err'));
    const url = proxy.ready.http as string;
    const admin = proxy.ready.admin as string;
    const pool = new Pool(url, { connections });
    const path = (i: number) => `/${MISS_MODULE}/@v/${missVersion(i)}.info`;
    let next = 0;
    let failed = 0;
    const run = async (n: number) => {
      const end = next + n;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (next < end) {
            const res = await pool.request({ path: path(next++), method: 'GET' });
            await res.body.dump();
            if (res.statusCode !== 200) failed++;
          }
        }),
      );
    };
    await run(2_000); // warm-up
    const cpu0 = await cpuSeconds(admin);
    const t0 = performance.now();
    await run(total);
    const wallS = (performance.now() - t0) / 1000;
    const cpuUs = ((await cpuSeconds(admin)) - cpu0) * 1e6;
    await pool.close();
    process.stdout.write(`MISS .info x ${total}, ${connections} connections: ${(total / wallS).toFixed(0)} req/s, proxy CPU ${(cpuUs / total).toFixed(1)} µs/request, ${failed} not 200\n`);
    await proxy.stop();
    if (!values['no-prof']) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) process.stdout.write(`top self time (whole run, warm-up included):\n${topSelf(join(profDir, file), 25)}\n`);
      if (file && values['save-prof']) copyFileSync(join(profDir, file), values['save-prof']);
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
    process.stderr.write(`profile-miss failed: ${(err as Error).stack ?? String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);
