// Issue 7 across processes: proxies as real child processes (dist/, `npm run
// build` first) sharing one cache.dir. One backend request per cold object
// however the requests are split between processes; kill -9 of the filler
// leaves nothing committed, its tailing readers are cut, and another process
// takes the fill over; a restart serves the go command from disk; `cache
// purge` (through the admin listener, and on the directory of a stopped
// proxy) makes the next request a MISS.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, onTestFinished, test } from 'vitest';
import { MAIN_JS, portOf, ROOT, spawnProxy, tempDir, writeConfigAtomic, type ChildProxy } from '../helpers/child-proxy.js';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { allModuleVersions, downloadFixtureSet } from '../helpers/go.js';
import { fetchOutcome } from '../helpers/raw-backend.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ZIP = '/example.com/m/@v/v1.0.0.zip';

/** A backend that sends `body` in `steps` pieces spread over `durationMs`, counting requests. */
async function pacedBackend(body: Buffer, durationMs: number, steps = 100): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    const piece = Math.ceil(body.length / steps);
    let off = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(body.subarray(off, off + piece));
      off += piece;
      if (off >= body.length) {
        clearInterval(timer);
        res.end();
      }
    }, durationMs / steps);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

interface Running {
  proxy: ChildProxy;
  url: string;
  admin: string;
}

async function startChild(dir: string, upstream: string, cacheDir: string, extra: Record<string, unknown> = {}): Promise<Running> {
  const configPath = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  await writeConfigAtomic(configPath, {
    listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' },
    upstream,
    rewrite: 'goproxy',
    cache: { dir: cacheDir },
    log: { level: 'info' },
    ...extra,
  });
  const proxy = spawnProxy({ configPath });
  const listening = await proxy.listening(2);
  const http_ = listening.find((l) => l.role === 'http')?.address ?? '';
  const admin = listening.find((l) => l.role === 'admin')?.address ?? '';
  return { proxy, url: `http://127.0.0.1:${portOf(http_)}`, admin };
}

async function filesIn(path: string): Promise<string[]> {
  return readdir(path).catch(() => [] as string[]);
}
async function committed(cacheDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await filesIn(join(cacheDir, 'v1', 'data'))) out.push(...(await filesIn(join(cacheDir, 'v1', 'data', d))));
  return out;
}

const zipBody = (n: number) => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4096) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  b.write('PK\x03\x04', 0, 'latin1');
  return b;
};

test('two proxy processes on one cache.dir: 24 concurrent requests split over both make one backend request', async () => {
  const body = zipBody(8 * 1024 * 1024);
  const b = await pacedBackend(body, 1500, 50);
  const dir = await tempDir('gpr-procs-');
  const cacheDir = join(dir, 'cache');
  const [one, two] = await Promise.all([startChild(dir, b.url, cacheDir), startChild(dir, b.url, cacheDir)]);
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => fetchOutcome((i % 2 ? two : one).url + ZIP)));
  expect(b.requests).toEqual([ZIP]);
  expect(new Set(results.map((r) => `${r.status} ${r.cut} ${sha256(r.body)}`))).toEqual(new Set([`200 false ${sha256(body)}`]));
  expect(new Set(results.map((r) => r.headers['x-cache']))).toEqual(new Set(['MISS']));
  // Afterwards both answer from the disk tier.
  for (const p of [one, two]) expect((await fetchOutcome(p.url + ZIP)).headers['x-cache']).toBe('HIT');
  expect(b.requests).toHaveLength(1);
}, 60_000);

test('kill -9 of the filler mid-fill: its readers and those tailing it in another process are cut, nothing is committed; another process and a restart serve the whole object', async () => {
  const body = zipBody(50 * 1024 * 1024);
  const want = sha256(body);
  const b = await pacedBackend(body, 5000, 100);
  const dir = await tempDir('gpr-kill-');
  const cacheDir = join(dir, 'cache');
  const filler = await startChild(dir, b.url, cacheDir);
  const other = await startChild(dir, b.url, cacheDir);

  const viaFiller = fetchOutcome(filler.url + ZIP);
  await new Promise((r) => setTimeout(r, 300));
  const viaOther = fetchOutcome(other.url + ZIP); // tails the filler's spool
  await new Promise((r) => setTimeout(r, 900));
  filler.proxy.signal('SIGKILL');
  await filler.proxy.exited;
  const [a, c] = await Promise.all([viaFiller, viaOther]);
  expect([a.status, a.cut]).toEqual([200, true]);
  expect([c.status, c.cut]).toEqual([200, true]);
  expect(a.body.length).toBeLessThan(body.length);
  expect(c.body.length).toBeLessThan(body.length);
  expect(await committed(cacheDir)).toEqual([]);

  // A restart on the same directory: the dead filler's lock and spool are cleared, the object is fetched whole.
  const restarted = await startChild(dir, b.url, cacheDir);
  const [r1, r2] = await Promise.all([fetchOutcome(restarted.url + ZIP), fetchOutcome(other.url + ZIP)]);
  for (const r of [r1, r2]) expect([r.status, r.cut, r.body.length, sha256(r.body)]).toEqual([200, false, body.length, want]);
  expect(b.requests).toHaveLength(2);
  // A reader in the other process ends when the spool's header says complete; the filler's
  // fdatasync and rename (the commit) may still be under way then: wait for it, bounded.
  for (let deadline = Date.now() + 10_000; (await committed(cacheDir)).length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  expect(await committed(cacheDir)).toHaveLength(1);
  for (let deadline = Date.now() + 10_000; (await filesIn(join(cacheDir, 'v1', 'fill'))).length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
  expect(await filesIn(join(cacheDir, 'v1', 'fill'))).toEqual([]);
  const hit = await fetchOutcome(restarted.url + ZIP);
  expect([hit.headers['x-cache'], sha256(hit.body)]).toEqual(['HIT', want]);
}, 90_000);

const run = promisify(execFile);
async function cli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [MAIN_JS, ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } });
  return stdout;
}

test('cache purge through the admin listener of a running proxy, and on the directory of a stopped one: the next request is a MISS', async () => {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  const dir = await tempDir('gpr-purge-');
  const cacheDir = join(dir, 'cache');
  const p = await startChild(dir, b.url, cacheDir);
  const zip = '/example.com/!burnt!sushi/toml/@v/v1.0.0.zip';
  const mod = '/example.com/!burnt!sushi/toml/@v/v1.0.0.mod';
  for (const path of [zip, mod]) expect((await fetchOutcome(p.url + path)).headers['x-cache']).toBe('MISS');
  for (const path of [zip, mod]) expect((await fetchOutcome(p.url + path)).headers['x-cache']).toBe('HIT');

  const cliConfig = join(dir, 'cli.json');
  await writeConfigAtomic(cliConfig, { listen: { admin: p.admin }, cache: { dir: cacheDir } });
  const ls = await cli(['cache', 'ls', 'example.com/BurntSushi/toml', '--config', cliConfig]);
  expect(ls).toMatch(/^zip\texample\.com\/!burnt!sushi\/toml\tv1\.0\.0\t\d+\tdisk$/m);
  expect(ls).toMatch(/running proxy/);
  const stats = JSON.parse(await cli(['cache', 'stats', '--config', cliConfig])) as { source: string; disk: { entries: number } };
  expect(stats.source).toBe('running proxy');
  expect(stats.disk.entries).toBeGreaterThanOrEqual(2);

  expect(await cli(['cache', 'purge', 'example.com/BurntSushi/toml@v1.0.0', '--config', cliConfig])).toMatch(/^purged [1-9]\d* objects .* running proxy/);
  expect((await fetchOutcome(p.url + zip)).headers['x-cache']).toBe('MISS');
  expect(b.count('/example.com/!burnt!sushi/toml/@v/v1.0.0.zip')).toBe(2);

  // Stopped: the CLI finds nothing on the admin address and purges the directory.
  p.proxy.signal('SIGTERM');
  await p.proxy.exited;
  const out = await cli(['cache', 'purge', 'example.com/BurntSushi/toml', '--config', cliConfig]);
  expect(out).toMatch(/^purged 1 objects .* directory /); // the zip fetched again after the first purge
  expect(await cli(['cache', 'ls', '--config', cliConfig])).toMatch(/^0 objects, 0 bytes \(directory /);
  const again = await startChild(dir, b.url, cacheDir);
  expect((await fetchOutcome(again.url + mod)).headers['x-cache']).toBe('MISS');
}, 60_000);

const IMMUTABLE = /\/@v\/[^/]+\.(info|mod|zip)$/;

test('restart: a new process on the same cache.dir serves a cold go mod download with zero backend requests for immutable objects', async () => {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  const dir = await tempDir('gpr-restart-');
  const cacheDir = join(dir, 'cache');
  const first = await startChild(dir, b.url, cacheDir);
  const sums = await downloadFixtureSet(first.url);
  expect(sums.size).toBe(allModuleVersions.length);
  const immutableFirst = b.requests.filter((r) => IMMUTABLE.test(r.path)).length;
  expect(immutableFirst).toBeGreaterThanOrEqual(allModuleVersions.length * 2);
  first.proxy.signal('SIGTERM');
  expect((await first.proxy.exited).code).toBe(0);

  b.reset();
  const second = await startChild(dir, b.url, cacheDir);
  await second.proxy.waitFor((l) => l.msg === 'cache indexed');
  expect(await downloadFixtureSet(second.url)).toEqual(sums);
  expect(b.requests.filter((r) => IMMUTABLE.test(r.path))).toEqual([]);
  // Access lines reach stdout in batches (flushed every 100 ms): wait for them rather than read a partial log.
  const immutableLines = () => second.proxy.logged('request').filter((l) => IMMUTABLE.test(String(l.path)));
  await second.proxy.waitFor(() => immutableLines().length >= allModuleVersions.length * 2).catch(() => undefined);
  const hits = immutableLines();
  expect(hits.length).toBeGreaterThanOrEqual(allModuleVersions.length * 2);
  expect(hits.every((l) => l.cache === 'HIT')).toBe(true);
}, 180_000);
