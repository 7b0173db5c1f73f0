/**
 * @module bench/fill-memory
 * Issue 7's memory benchmark: 120 concurrent HEADs and 120 abandoned GETs
 * (the client leaves after the first bytes) of 240 distinct cold 50 MiB zips
 * from a loopback backend, through the compiled proxy (dist/, a child
 * process). Samples the proxy's VmRSS every 50 ms until every fill is over;
 * prints a table and writes bench/results/fill-memory-<time>.json. Modes:
 * `disk` (cache.dir in a temp dir; target: peak under 300 MiB) and `memory`
 * (cache.dir null: fills stream through and are dropped when abandoned).
 *   npm run build && node --import tsx bench/fill-memory.ts [disk|memory ...]
 * Must not: send traffic anywhere but loopback, or kill anything it did not start.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const MAIN_JS = join(ROOT, 'dist/src/main.js');
const OBJECT_BYTES = 50 * 1024 * 1024;
const HEADS = 120;
const GETS = 120;
const DEADLINE_MS = 600_000;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function startBackend(body: Buffer): Promise<{ url: string; requests: () => number; close: () => void }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function startProxy(config: object, dir: string): Promise<{ pid: number; http: string; admin: string; stop: () => Promise<void> }> {
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const child = spawn(process.execPath, [MAIN_JS, 'serve', '--config', configPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const addresses = new Map<string, string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('proxy did not start within 20 s')), 20_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.includes('"listening"')) return;
      const l = JSON.parse(line) as { role: string; address: string };
      addresses.set(l.role, l.address);
      if (addresses.size === 2) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error('proxy exited')));
  }).catch((err: Error) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    pid: child.pid as number,
    http: `http://${addresses.get('http')}`,
    admin: `http://${addresses.get('admin')}`,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

function request(method: 'HEAD' | 'GET', url: string, abandon: boolean): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      if (abandon) {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      } else res.resume();
      res.on('end', () => resolve());
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
}

async function fills(admin: string): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(`${admin}/cache/stats`, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve((JSON.parse(text) as { fills: number }).fills));
      })
      .on('error', () => resolve(-1));
  });
}

interface Result {
  mode: string;
  peakRssMiB: number;
  idleRssMiB: number;
  backendRequests: number;
  committedObjects: number | null;
  seconds: number;
}

async function run(mode: 'disk' | 'memory', body: Buffer): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-bench-fill-'));
  const backend = await startBackend(body);
  const cacheDir = join(dir, 'cache');
  const proxy = await startProxy(
    {
      listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' },
      upstream: backend.url,
      rewrite: 'goproxy',
      cache: { dir: mode === 'disk' ? cacheDir : null, diskMaxBytes: 4 * 1024 * 1024 * 1024 },
      log: { level: 'info' }, // 'listening' lines give the ports
    },
    dir,
  );
  let peak = rssBytes(proxy.pid);
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(proxy.pid))), 50);
  const started = performance.now();
  try {
    const all: Array<Promise<void>> = [];
    for (let i = 0; i < HEADS; i++) all.push(request('HEAD', `${proxy.http}/example.com/fill/@v/v1.0.${i}.zip`, false));
    for (let i = 0; i < GETS; i++) all.push(request('GET', `${proxy.http}/example.com/fill/@v/v1.1.${i}.zip`, true));
    await Promise.all(all);
    const deadline = Date.now() + DEADLINE_MS;
    while ((await fills(proxy.admin)) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const seconds = (performance.now() - started) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const idle = rssBytes(proxy.pid);
    clearInterval(sampler);
    let committed: number | null = null;
    if (mode === 'disk') {
      const stats = await new Promise<{ disk: { entries: number } }>((resolve, reject) =>
        http.get(`${proxy.admin}/cache/stats`, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve(JSON.parse(text) as { disk: { entries: number } }));
        }).on('error', reject),
      );
      committed = stats.disk.entries;
    }
    return { mode, peakRssMiB: +(peak / 2 ** 20).toFixed(1), idleRssMiB: +(idle / 2 ** 20).toFixed(1), backendRequests: backend.requests(), committedObjects: committed, seconds: +seconds.toFixed(1) };
  } finally {
    clearInterval(sampler);
    await proxy.stop();
    backend.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const modes = (process.argv.slice(2).length ? process.argv.slice(2) : ['disk', 'memory']) as Array<'disk' | 'memory'>;
const body = Buffer.alloc(OBJECT_BYTES, 7);
body.write('PK\x03\x04', 0, 'latin1');
const results: Result[] = [];
for (const mode of modes) results.push(await run(mode, body));
const when = new Date().toISOString();
process.stdout.write(`fill-memory: ${HEADS} HEAD + ${GETS} abandoned GET of distinct cold ${OBJECT_BYTES / 2 ** 20} MiB zips (${when})\n`);
process.stdout.write('mode     peak RSS MiB  idle RSS MiB  backend reqs  committed  seconds\n');
for (const r of results) {
  process.stdout.write(`${r.mode.padEnd(8)} ${String(r.peakRssMiB).padStart(12)}  ${String(r.idleRssMiB).padStart(12)}  ${String(r.backendRequests).padStart(12)}  ${String(r.committedObjects ?? '-').padStart(9)}  ${String(r.seconds).padStart(7)}\n`);
}
mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
const out = join(ROOT, `bench/results/fill-memory-${when.replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ scenario: 'fill-memory', date: when, node: process.version, objectBytes: OBJECT_BYTES, heads: HEADS, gets: GETS, targetPeakRssMiB: 300, results }, null, 2));
process.stdout.write(`wrote ${out}\n`);
