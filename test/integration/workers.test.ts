// `workers: 2`: the compiled proxy as a real process tree (a supervisor and
// two forked workers) on real sockets. Proves: both workers accept on the one
// socket the supervisor holds, one /metrics scrape sums them, a reload is
// all-or-nothing for the set, a worker killed with SIGKILL is restarted and
// serves, SIGTERM under load drains both with zero failed requests and exit
// 0, and systemd-socket-activate's fds reach the workers. (A reload that
// only some workers reject: workers-rollback.test.ts.) And what the
// supervisor does for the set: it alone watches the config file
// (reload.watch), fans `cache purge`/ls/stats out to every worker, and
// answers /readyz from the workers' upstream health; a POST /reload during
// the start waits for the workers.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { beforeAll, expect, onTestFinished, test } from 'vitest';
import { cleanEnv, MAIN_JS, portOf, spawnProxy, tempDir, writeConfigAtomic, type ChildProxy, type LogLine } from '../helpers/child-proxy.js';
import { bindLoopback } from '../helpers/fd-supervisor.js';
import { INTERNAL_PREFIX, STANDARD_PREFIX, startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { get } from '../helpers/http-get.js';
import { requireNotifyTools, startSink } from '../helpers/notify-sink.js';
import { listeningSockets } from '../helpers/proc-sockets.js';
import { startRequestLoop } from '../helpers/request-loop.js';
import { sample, startWorkerSet, type WorkerSet } from '../helpers/worker-set.js';

const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';
const INFO = '/example.com/lib/@v/v1.0.0.info';
const MOD = '/example.com/app/@v/v1.2.0.mod';

beforeAll(() => {
  if (!existsSync(SOCKET_ACTIVATE)) throw new Error(`${SOCKET_ACTIVATE} is missing: this test needs it (apt-get install -y systemd)`);
});

async function backendStarted(): Promise<FixtureBackend> {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  return backend;
}

function baseConfig(backend: FixtureBackend, dir: string): Record<string, unknown> {
  return {
    listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' },
    upstream: backend.url,
    rewrite: 'internal',
    workers: 2,
    // The workers' shared disk tier, in the test's own directory (the default would be cache/ in the repository).
    cache: { dir: join(dir, 'cache') },
    tls: { dir: join(dir, 'certs') },
    shutdown: { drainTimeoutMs: 5_000 },
  };
}

/** `n` GETs of `path`, each on a new connection, `concurrency` at a time; returns each status and body. */
async function many(url: string, path: string, n: number, concurrency = 8): Promise<Array<{ status: number; body: string }>> {
  const out: Array<{ status: number; body: string }> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const r = await get(url + path);
        out.push({ status: r.status, body: r.body.toString() });
      }
    }),
  );
  return out;
}

/** Access lines (`request`) of the worker processes since line `from`. */
function accessLines(proxy: ChildProxy, from = 0): LogLine[] {
  return proxy.lines.slice(from).filter((l) => l.msg === 'request');
}

test('two workers accept on one socket; one /metrics scrape sums both', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const s = await startWorkerSet(baseConfig(backend, dir), dir, 2);
  const pids = s.workers();
  expect(pids.size).toBe(2);
  expect(new Set(pids.values()).size).toBe(2);
  expect([...pids.values()]).not.toContain(s.proxy.pid);

  const expected = (await get(`${backend.url}${INFO}`)).body.toString();
  const answers = await many(s.http, INFO, 200);
  expect(answers.filter((a) => a.status === 200 && a.body === expected)).toHaveLength(200);

  // Both workers answered (the kernel hands each new connection to one of them).
  await s.proxy.waitFor((l) => l.msg === 'request', { from: 0 });
  const metrics = (await get(`${s.admin}/metrics`)).body.toString();
  expect(sample(metrics, 'gpr_requests_total')).toBe(200);
  const perWorker = [0, 1].map((w) => sample(metrics, 'gpr_worker_requests_total', `worker="${w}"`));
  expect(perWorker[0]! + perWorker[1]!).toBe(200);
  expect(perWorker[0]).toBeGreaterThan(0);
  expect(perWorker[1]).toBeGreaterThan(0);
  expect(sample(metrics, 'gpr_workers_ready')).toBe(2);
  // One backend request: the first misses of both workers join one fill through the shared disk tier.
  expect(backend.count('/v1/modules/example.com/lib/versions/v1.0.0/info')).toBe(1);
  // The access lines come from both worker pids, never from the supervisor.
  await s.proxy.waitFor(() => accessLines(s.proxy).length >= 200);
  const servedBy = new Set(accessLines(s.proxy).map((l) => l.pid));
  expect(servedBy).toEqual(new Set(pids.values()));
  // The workers hold the supervisor's socket: same port, nothing bound of their own.
  const port = portOf(s.http.slice('http://'.length));
  for (const pid of pids.values()) expect(await listeningSockets(pid)).toEqual([{ fd: 3, port }]);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
});

test('SIGHUP: a config the supervisor rejects reaches no worker; a good one applies to both', async () => {
  const backend = await backendStarted();
  const other = await backendStarted();
  const dir = await tempDir();
  // With an HTTPS listener, so each worker loads the CA a config names.
  const config = { ...baseConfig(backend, dir), listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' } };
  const s = await startWorkerSet(config, dir, 2);

  // Invalid JSON: the supervisor rejects it before any worker sees it.
  await writeConfigAtomic(s.configPath, '{ "upstream": ');
  let from = s.proxy.lines.length;
  s.proxy.signal('SIGHUP');
  const failed = await s.proxy.waitFor((l) => l.msg === 'config reload failed' || l.msg === 'config reloaded', { from });
  expect(failed.msg).toBe('config reload failed');
  expect(failed.worker).toBeUndefined();

  // Valid for the schema, but it names a CA that cannot be loaded: the supervisor loads the TLS material
  // before any worker sees the config (as at the start), so it fails there and no worker reloads.
  await writeConfigAtomic(s.configPath, { ...config, upstream: other.url, tls: { dir: join(dir, 'certs'), ca: { cert: join(dir, 'missing.pem'), key: join(dir, 'missing-key.pem') } } });
  from = s.proxy.lines.length;
  s.proxy.signal('SIGHUP');
  const rejected = await s.proxy.waitFor((l) => (l.msg === 'config reload failed' || l.msg === 'config reloaded') && l.worker === undefined, { from });
  expect(rejected.msg).toBe('config reload failed');
  expect((rejected.err as { code: string }).code).toBe('GPR_ERR_CA_MISSING');
  expect(s.proxy.lines.slice(from).filter((l) => l.worker !== undefined && l.msg.startsWith('config reload'))).toEqual([]);
  for (const a of await many(s.http, INFO, 40)) expect(a.status).toBe(200);
  expect(other.requests).toHaveLength(0);

  // A good config: one `config reloaded` from the supervisor, and every worker uses the new upstream.
  await writeConfigAtomic(s.configPath, { ...config, upstream: other.url });
  from = s.proxy.lines.length;
  s.proxy.signal('SIGHUP');
  const ok = await s.proxy.waitFor((l) => (l.msg === 'config reload failed' || l.msg === 'config reloaded') && l.worker === undefined, { from });
  expect(ok.msg).toBe('config reloaded');
  expect(ok.generation).toBe(2);
  const before = backend.requests.length;
  const answers = await many(s.http, MOD, 60);
  expect(answers.every((a) => a.status === 200)).toBe(true);
  expect(backend.requests.length).toBe(before);
  expect(other.count('/v1/modules/example.com/app/versions/v1.2.0/mod')).toBeGreaterThanOrEqual(1);
  await s.proxy.waitFor(() => accessLines(s.proxy, from).length >= 60);
  expect(new Set(accessLines(s.proxy, from).map((l) => l.pid))).toEqual(new Set(s.workers().values()));
  const metrics = (await get(`${s.admin}/metrics`)).body.toString();
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="ok"')).toBe(1);
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="failed"')).toBe(2);
  expect(sample(metrics, 'gpr_config_generation')).toBe(2);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
});

test('a worker killed with SIGKILL is restarted and serves; the service never stops', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const s = await startWorkerSet(baseConfig(backend, dir), dir, 2);
  const victim = s.workers().get(0)!;
  const from = s.proxy.lines.length;
  process.kill(victim, 'SIGKILL');
  const exited = await s.proxy.waitFor((l) => l.msg === 'worker exited', { from });
  expect(exited).toMatchObject({ level: 50, worker: 0, workerPid: victim, signal: 'SIGKILL' });
  const ready = await s.proxy.waitFor((l) => l.msg === 'worker ready' && l.worker === 0, { from });
  expect(ready.workerPid).not.toBe(victim);
  expect(s.proxy.exit()).toBeUndefined();

  const expected = (await get(`${backend.url}${INFO}`)).body.toString();
  const answers = await many(s.http, INFO, 100);
  expect(answers.filter((a) => a.status === 200 && a.body === expected)).toHaveLength(100);
  await s.proxy.waitFor(() => accessLines(s.proxy, from).length >= 100);
  expect(accessLines(s.proxy, from).some((l) => l.pid === ready.workerPid)).toBe(true);
  const metrics = (await get(`${s.admin}/metrics`)).body.toString();
  expect(sample(metrics, 'gpr_worker_restarts_total', 'worker="0"')).toBe(1);
  expect(sample(metrics, 'gpr_workers_ready')).toBe(2);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
});

test('SIGTERM under load: both workers drain, zero failed requests, exit 0', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const s = await startWorkerSet(baseConfig(backend, dir), dir, 2);
  const paths = [INFO, MOD];
  const bodies = new Map<string, string>();
  for (const p of paths) bodies.set(p, (await get(`${backend.url}${p}`)).body.toString());
  const loop = startRequestLoop({ url: s.http, paths, bodies, keepAliveWorkers: 4, closeWorkers: 4, timeoutMs: 10_000 });
  onTestFinished(() => loop.stop());
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  s.proxy.signal('SIGTERM');
  const exit = await s.proxy.exited;
  await loop.stop();
  expect(exit).toEqual({ code: 0, signal: null });
  // Once the listening socket is closed, new connections are refused, and
  // the ones still waiting in its accept queue are reset by the kernel: no
  // server read them (no access line carries their Host). Under systemd the
  // socket unit holds the socket and they wait for the next start instead.
  // Every request a worker read must have been answered in full.
  const read = new Set(accessLines(s.proxy).map((l) => l.host));
  const neverAccepted = (a: (typeof loop.attempts)[number]) =>
    a.error !== undefined && !a.error.gotResponse && !a.reusedSocket && !read.has(a.host) && (a.error.code === 'ECONNREFUSED' || a.error.code === 'ECONNRESET');
  const failed = loop.attempts.filter((a) => !(a.status === 200 && a.bodyOk) && !neverAccepted(a));
  expect(failed).toEqual([]);
  const served = loop.attempts.filter((a) => a.status === 200);
  expect(served.length).toBeGreaterThan(50);
  expect(new Set(accessLines(s.proxy).map((l) => l.pid)).size).toBe(2);
  expect(s.proxy.logged('stopped').filter((l) => l.worker === undefined)).toHaveLength(1);
}, 30_000);

test('socket activation: systemd-socket-activate passes the fd, the supervisor hands it to both workers', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const configPath = join(dir, 'config.json');
  // Config addresses held by this test: binding any of them would fail with EADDRINUSE.
  const occupied = await bindLoopback();
  onTestFinished(() => void occupied.close());
  const taken = `127.0.0.1:${(occupied.address() as AddressInfo).port}`;
  await writeConfigAtomic(configPath, { ...baseConfig(backend, dir), listen: { http: taken, https: null, admin: null } });
  const socket = await bindLoopback();
  const port = (socket.address() as AddressInfo).port;
  const proxy = spawnProxy({
    configPath,
    wrap: (argv) => ['/bin/sh', '-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec ${SOCKET_ACTIVATE} --fdname=http "$@"`, 'sh', ...argv],
    passSockets: [socket],
  });
  const url = `http://127.0.0.1:${port}`;
  // The first connection makes systemd-socket-activate exec the proxy; it waits in the backlog meanwhile.
  const first = await get(`${url}${INFO}`);
  expect(first.status).toBe(200);
  let ready = 0;
  await proxy.waitFor((l) => l.msg === 'worker ready' && ++ready === 2);
  expect(proxy.lines.find((l) => l.msg === 'listening' && l.worker === undefined)).toMatchObject({ role: 'http', address: `127.0.0.1:${port}`, fd: 3 });
  const answers = await many(url, INFO, 100);
  expect(answers.every((a) => a.status === 200)).toBe(true);
  const workerPids = proxy.lines.filter((l) => l.msg === 'worker ready').map((l) => l.workerPid as number);
  await proxy.waitFor(() => accessLines(proxy).length >= 101);
  expect(new Set(accessLines(proxy).map((l) => l.pid))).toEqual(new Set(workerPids));
  // The supervisor keeps systemd's fd 3; each worker got it as its fd 3 too.
  expect(await listeningSockets(proxy.pid)).toEqual([{ fd: 3, port }]);
  for (const pid of workerPids) expect(await listeningSockets(pid)).toEqual([{ fd: 3, port }]);

  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
});

test('two workers, one disk tier: 500 concurrent GETs of one cold zip make exactly 1 backend request, every body the same', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const s = await startWorkerSet(baseConfig(backend, dir), dir, 2);
  // The backend holds its answer 500 ms: every request arrives while the one fill is under way, in both workers.
  backend.setDelayMs(500);
  const path = '/example.com/lib/@v/v1.1.0.zip';
  const expected = createHash('sha256').update(backend.zip('example.com/lib', 'v1.1.0')).digest('hex');
  const hashes = await Promise.all(
    Array.from(
      { length: 500 },
      () =>
        new Promise<string>((resolve, reject) => {
          const req = http.get(`${s.http}${path}`, { agent: false, headers: { connection: 'close' } }, (res) => {
            const hash = createHash('sha256');
            res.on('data', (c: Buffer) => hash.update(c));
            res.on('end', () => resolve(`${res.statusCode} ${hash.digest('hex')}`));
            res.on('error', reject);
          });
          req.setTimeout(60_000, () => req.destroy(new Error('timed out')));
          req.on('error', reject);
        }),
    ),
  );
  expect(new Set(hashes)).toEqual(new Set([`200 ${expected}`]));
  expect(backend.count('/v1/modules/example.com/lib/versions/v1.1.0/zip')).toBe(1);
  // Both workers answered some of them.
  await s.proxy.waitFor(() => accessLines(s.proxy).length >= 500);
  expect(new Set(accessLines(s.proxy).map((l) => l.pid))).toEqual(new Set(s.workers().values()));

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 60_000);

test('sd_notify for the set: one READY=1 once both workers serve, watchdog pings only while every worker answers, one RELOADING/READY per SIGHUP', async () => {
  requireNotifyTools();
  const backend = await backendStarted();
  const dir = await tempDir();
  const sink = await startSink();
  // Pings every 200 ms (WATCHDOG_USEC / 2); no WATCHDOG_PID, so they are the supervisor's.
  const s = await startWorkerSet(baseConfig(backend, dir), dir, 2, cleanEnv({ NOTIFY_SOCKET: sink.path, WATCHDOG_USEC: '400000' }));
  const pings = () => sink.messages().filter((m) => m === 'WATCHDOG=1').length;
  const ready = await sink.until('READY=1', (ms) => ms.some((m) => m.startsWith('READY=1')));
  expect(ready.filter((m) => m.startsWith('READY=1'))).toHaveLength(1);
  expect(ready.find((m) => m.startsWith('READY=1'))).toContain('STATUS=2/2 workers');
  await sink.until('3 pings', () => pings() >= 3);

  // A worker that stops answering (SIGSTOP: alive, but its event loop does not turn) stops the pings.
  const stopped = s.workers().get(1)!;
  process.kill(stopped, 'SIGSTOP');
  try {
    await s.proxy.waitFor((l) => l.msg === 'watchdog: not every worker answers; no ping this time', { from: s.proxy.lines.length });
    const before = pings();
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(pings() - before).toBeLessThanOrEqual(1);
  } finally {
    process.kill(stopped, 'SIGCONT');
  }
  const resumed = pings();
  await sink.until('pings again', () => pings() >= resumed + 2);

  const from = sink.messages().length;
  s.proxy.signal('SIGHUP');
  await s.proxy.waitFor((l) => l.msg === 'config reloaded' && l.worker === undefined);
  const after = await sink.until('READY=1 after the reload', (ms) => ms.slice(from).some((m) => m.startsWith('READY=1')));
  const reloadMessages = after.slice(from).filter((m) => m !== 'WATCHDOG=1');
  expect(reloadMessages.map((m) => m.split('\n')[0])).toEqual(['RELOADING=1', 'READY=1']);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
  expect(sink.messages().filter((m) => m === 'STOPPING=1')).toHaveLength(1);
}, 60_000);

/** GETs `path` on new connections until both worker pids have answered it (at most `max` requests); returns the access lines since `from`. */
async function untilBothServed(s: WorkerSet, path: string, from: number, max = 200): Promise<LogLine[]> {
  const pids = new Set(s.workers().values());
  const servedBy = () => new Set(accessLines(s.proxy, from).filter((l) => l.path === path).map((l) => l.pid));
  for (let i = 0; i < max && servedBy().size < pids.size; i++) {
    expect((await get(s.http + path)).status).toBe(200);
    await s.proxy.waitFor(() => accessLines(s.proxy, from).filter((l) => l.path === path).length >= i + 1);
  }
  expect(servedBy()).toEqual(pids);
  return accessLines(s.proxy, from).filter((l) => l.path === path);
}

test('reload.watch: the supervisor alone watches; a rewritten file reloads both workers once, an invalid one changes nothing', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const config = { ...baseConfig(backend, dir), reload: { watch: true, debounceMs: 100, pollMs: 60_000 } };
  const s = await startWorkerSet(config, dir, 2);
  let probes = 0;
  /** `n` never-seen versions, each on a new connection: which worker answered and which backend path form it asked. */
  async function probe(n: number): Promise<Array<{ pid: number; form: string }>> {
    const from = s.proxy.lines.length;
    const versions = Array.from({ length: n }, () => `v0.0.${++probes}`);
    for (const v of versions) expect((await get(`${s.http}/example.com/lib/@v/${v}.info`)).status).toBe(404);
    await s.proxy.waitFor(() => accessLines(s.proxy, from).length >= n);
    return versions.map((v) => {
      const line = accessLines(s.proxy, from).find((l) => l.path === `/example.com/lib/@v/${v}.info`);
      const internal = backend.count(`${INTERNAL_PREFIX}/example.com/lib/versions/${v}/info`);
      const standard = backend.count(`${STANDARD_PREFIX}/example.com/lib/@v/${v}.info`);
      return { pid: line?.pid as number, form: `${internal} internal, ${standard} standard` };
    });
  }
  const pids = new Set(s.workers().values());

  // An invalid file: one failed reload, counted once; both workers keep the internal layout.
  let from = s.proxy.lines.length;
  await writeConfigAtomic(s.configPath, '{ "upstream": ');
  const failed = await s.proxy.waitFor((l) => (l.msg === 'config reload failed' || l.msg === 'config reloaded') && l.worker === undefined, { from });
  expect(failed.msg).toBe('config reload failed');
  let answers = await probe(40);
  expect(new Set(answers.map((a) => a.form))).toEqual(new Set(['1 internal, 0 standard']));
  expect(new Set(answers.map((a) => a.pid))).toEqual(pids);

  // A good file (the standard layout under /api/go/repo): one reload for the set, both workers use it.
  from = s.proxy.lines.length;
  await writeConfigAtomic(s.configPath, { ...config, upstream: `${backend.url}${STANDARD_PREFIX}`, rewrite: 'goproxy' });
  const ok = await s.proxy.waitFor((l) => (l.msg === 'config reload failed' || l.msg === 'config reloaded') && l.worker === undefined, { from });
  expect(ok).toMatchObject({ msg: 'config reloaded', generation: 2 });
  answers = await probe(40);
  expect(new Set(answers.map((a) => a.form))).toEqual(new Set(['0 internal, 1 standard']));
  expect(new Set(answers.map((a) => a.pid))).toEqual(pids);

  // Only the supervisor noticed the changes; each was one reload of the set.
  const noticed = s.proxy.logged('config file changed');
  expect(noticed.map((l) => l.pid)).toEqual([s.proxy.pid, s.proxy.pid]);
  const metrics = (await get(`${s.admin}/metrics`)).body.toString();
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="ok"')).toBe(1);
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="failed"')).toBe(1);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 60_000);

test('cache purge (the built CLI) reaches every worker: the next request on each worker is a MISS', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  // Memory tiers only: each worker holds its own copy, so a purge that missed one worker would leave a HIT there.
  const s = await startWorkerSet({ ...baseConfig(backend, dir), cache: { dir: null } }, dir, 2);
  const backendPath = '/v1/modules/example.com/lib/versions/v1.0.0/info';
  const filled = await untilBothServed(s, INFO, 0);
  expect(backend.count(backendPath)).toBe(2);
  expect(filled.filter((l) => l.cache === 'MISS')).toHaveLength(2);
  const stats = JSON.parse((await get(`${s.admin}/cache/stats`)).body.toString()) as { workers: number; memory: { entries: number }; disk: unknown };
  expect(stats).toMatchObject({ workers: 2, memory: { entries: 2 }, disk: null });
  const listed = JSON.parse((await get(`${s.admin}/cache?module=example.com/lib`)).body.toString()) as Array<{ key: string; tier: string }>;
  expect(listed.map((o) => o.tier)).toEqual(['memory']);

  // The CLI finds the proxy through listen.admin: the address the supervisor bound (the served config says port 0).
  const cliConfig = join(dir, 'cli.json');
  await writeConfigAtomic(cliConfig, { ...baseConfig(backend, dir), cache: { dir: null }, listen: { http: null, https: null, admin: s.admin.slice('http://'.length) } });
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, [MAIN_JS, 'cache', 'purge', 'example.com/lib@v1.0.0', '--config', cliConfig], { timeout: 20_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  // One memory copy per worker.
  expect(out).toMatch(/^purged 2 objects \(\d+ bytes\) of example.com\/lib@v1.0.0 from the running proxy at /);
  const after = JSON.parse((await get(`${s.admin}/cache/stats`)).body.toString()) as { memory: { entries: number } };
  expect(after.memory.entries).toBe(0);

  const from = s.proxy.lines.length;
  const again = await untilBothServed(s, INFO, from);
  for (const pid of new Set(s.workers().values())) expect(again.find((l) => l.pid === pid)?.cache).toBe('MISS');
  expect(backend.count(backendPath)).toBe(4);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 60_000);

test('/readyz aggregates the workers: 200 while one worker has an upstream, 503 once every worker\'s is cooling down', async () => {
  // A backend that resets every connection as soon as it is accepted.
  const refusing = net.createServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => refusing.close(() => resolve())));
  const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`;
  const dir = await tempDir();
  const backend = await backendStarted();
  const s = await startWorkerSet({ ...baseConfig(backend, dir), upstream: [{ url, health: { maxFailures: 1, cooldownMs: 60_000 } }] }, dir, 2);
  expect((await get(`${s.admin}/readyz`)).status).toBe(200);

  // One failed request cools down one worker's entry: the other worker still has it.
  expect((await get(s.http + INFO)).status).toBe(404);
  await s.proxy.waitFor((l) => l.msg === 'upstream cooling down');
  expect((await get(`${s.admin}/readyz`)).status).toBe(200);

  // Until both workers have failed once (a cooling worker answers 404 without asking the backend).
  const pids = new Set(s.workers().values());
  for (let i = 0; i < 200 && s.proxy.logged('upstream cooling down').length < 2; i++) {
    expect((await get(s.http + INFO)).status).toBe(404);
    await s.proxy.waitFor(() => accessLines(s.proxy).length >= i + 2);
  }
  expect(new Set(s.proxy.logged('upstream cooling down').map((l) => l.pid))).toEqual(pids);
  const readyz = await get(`${s.admin}/readyz`);
  expect({ status: readyz.status, body: readyz.body.toString() }).toEqual({ status: 503, body: 'every upstream is cooling down after repeated failures\n' });

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 60_000);

test('POST /reload while the workers are still starting waits for them instead of crashing the supervisor', async () => {
  const backend = await backendStarted();
  const dir = await tempDir();
  const configPath = join(dir, 'config.json');
  await writeConfigAtomic(configPath, baseConfig(backend, dir));
  const proxy = spawnProxy({ configPath });
  // The supervisor's admin listener opens before it forks the workers (they take most of a second to serve).
  const adminLine = await proxy.waitFor((l) => l.msg === 'listening' && l.role === 'admin' && l.worker === undefined);
  expect(proxy.logged('worker ready')).toHaveLength(0);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`http://${adminLine.address as string}/reload`, { method: 'POST', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  expect(answer).toEqual({ status: 200, body: '{"ok":true,"generation":2}\n' });
  let ready = 0;
  await proxy.waitFor((l) => l.msg === 'worker ready' && ++ready === 2);
  expect(proxy.exit()).toBeUndefined();

  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
});
