// `workers: 3`, the compiled proxy as a real process tree, and a reload that
// only SOME workers take. The supervisor validates a config (and, with an
// HTTPS listener, the TLS material it names) before any worker sees it, so a
// rejection by one worker alone has to come from that worker's own state. Two
// real ways, no test hook in the proxy:
// - one worker is out of file descriptors (prlimit(1) lowers its
//   RLIMIT_NOFILE to 0): it cannot open the CA files a
//   reload reads, and answers the reload with EMFILE while the others apply it;
// - one worker dies (SIGKILL) while the supervisor waits for its answer;
// - one worker does not answer within reload.workerTimeoutMs (SIGSTOP).
// Proves, for SIGHUP and for POST /reload (`go-proxy-rewriter reload`): the
// set reports the failure once (log line, exit status / HTTP 500, exactly
// one RELOADING=1 then READY=1 on NOTIFY_SOCKET), every worker serves the old
// config afterwards (new connections until each worker pid has answered
// several probes: each probe's backend request tells which upstream that
// worker uses), no request fails meanwhile, and a good config then applies to
// every worker. A worker that dies mid-reload is restarted with the old
// config, and the reload's outcome comes at once, not after the 30 s answer
// timeout; one that answers late ends on the old config too; one that took
// the new config and cannot take the old one back is restarted with the old
// one; and a worker restarted while a successful reload ran is brought to the
// new config.
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { cleanEnv, MAIN_JS, tempDir, writeConfigAtomic, type LogLine } from '../helpers/child-proxy.js';
import { INTERNAL_PREFIX, startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { get } from '../helpers/http-get.js';
import { requireNotifyTools, startSink, type Sink } from '../helpers/notify-sink.js';
import { startRequestLoop } from '../helpers/request-loop.js';
import { sample, startWorkerSet, type WorkerSet } from '../helpers/worker-set.js';

const WORKERS = 3;
const INFO = '/example.com/lib/@v/v1.0.0.info';

async function backendStarted(): Promise<FixtureBackend> {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  return backend;
}

function setConfig(upstream: FixtureBackend, dir: string): Record<string, unknown> {
  return {
    // An HTTPS listener: every reload makes each worker read the CA files in tls.dir.
    listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' },
    upstream: upstream.url,
    rewrite: 'internal',
    workers: WORKERS,
    // Memory tiers only: no worker answers from an object another worker filled.
    cache: { dir: null },
    tls: { dir: join(dir, 'certs') },
    shutdown: { drainTimeoutMs: 5_000 },
  };
}

/** The set on `config`, with `sink` as its NOTIFY_SOCKET; resolves after its READY=1. */
async function startSet(config: Record<string, unknown>, dir: string, sink: Sink): Promise<WorkerSet> {
  const s = await startWorkerSet(config, dir, WORKERS, cleanEnv({ NOTIFY_SOCKET: sink.path }));
  await sink.until('READY=1', (ms) => ms.some((m) => m.startsWith('READY=1')));
  return s;
}

/** The supervisor's outcome line of the next reload after line `from`. */
function outcome(s: WorkerSet, from: number, timeoutMs?: number): Promise<LogLine> {
  return s.proxy.waitFor((l) => (l.msg === 'config reload failed' || l.msg === 'config reloaded') && l.worker === undefined, { from, ...(timeoutMs ? { timeoutMs } : {}) });
}

/** The sd_notify messages since index `from` once READY=1 came, watchdog pings left out: the first line of each. */
async function notifiedSince(sink: Sink, from: number): Promise<string[]> {
  await sink.until('READY=1 after the reload', (ms) => ms.slice(from).some((m) => m.startsWith('READY=1')));
  // Anything sent late (a second READY=1) would show up here.
  await new Promise((resolve) => setTimeout(resolve, 300));
  return sink
    .messages()
    .slice(from)
    .filter((m) => m !== 'WATCHDOG=1');
}

let probes = 0;
/**
 * Never-seen versions, each on a new connection, until every worker pid of
 * `s` has answered at least `min` of them (at most `max` requests). Returns,
 * per worker pid, which upstream its probes reached ("A", "B", "none").
 */
async function upstreamByWorker(s: WorkerSet, a: FixtureBackend, b: FixtureBackend, min = 3, max = 400): Promise<Map<number, Set<string>>> {
  const pids = new Set(s.workers().values());
  const seen = new Map<number, Set<string>>();
  const count = new Map<number, number>();
  const from = s.proxy.lines.length;
  let sent = 0;
  while (sent < max && [...pids].some((p) => (count.get(p) ?? 0) < min)) {
    const batch = Array.from({ length: 12 }, () => `v0.0.${++probes}`);
    for (const v of batch) expect((await get(`${s.http}/example.com/lib/@v/${v}.info`)).status).toBe(404);
    sent += batch.length;
    const paths = new Set(batch.map((v) => `/example.com/lib/@v/${v}.info`));
    await s.proxy.waitFor(() => s.proxy.lines.slice(from).filter((l) => l.msg === 'request' && paths.has(l.path as string)).length >= batch.length);
    for (const v of batch) {
      const line = s.proxy.lines.slice(from).find((l) => l.msg === 'request' && l.path === `/example.com/lib/@v/${v}.info`);
      expect(line).toBeDefined();
      const pid = line!.pid;
      const path = `${INTERNAL_PREFIX}/example.com/lib/versions/${v}/info`;
      const where = `${a.count(path) ? 'A' : ''}${b.count(path) ? 'B' : ''}` || 'none';
      if (!seen.has(pid)) seen.set(pid, new Set());
      seen.get(pid)!.add(where);
      count.set(pid, (count.get(pid) ?? 0) + 1);
    }
  }
  expect(new Set(seen.keys())).toEqual(pids);
  for (const p of pids) expect(count.get(p)).toBeGreaterThanOrEqual(min);
  return seen;
}

function everyWorkerOn(s: WorkerSet, upstream: 'A' | 'B'): Map<number, Set<string>> {
  return new Map([...s.workers().values()].map((pid) => [pid, new Set([upstream])]));
}

/** RLIMIT_NOFILE of `pid` as "SOFT:HARD". */
function nofile(pid: number): string {
  return execFileSync('prlimit', ['--pid', String(pid), '--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD'], { encoding: 'utf8' }).trim().split(/\s+/).join(':');
}

/**
 * Leaves `pid` no file descriptor to open: its soft RLIMIT_NOFILE becomes 0
 * (a new fd must be numbered below it). The fds it has open, its connections
 * among them, keep working. Returns the function that restores the limit.
 */
function exhaustFds(pid: number): () => void {
  const before = nofile(pid);
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=0:${before.split(':')[1]}`]);
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${before}`]);
  };
  onTestFinished(() => {
    try {
      restore();
    } catch {
      // the worker is gone
    }
  });
  return restore;
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [MAIN_JS, ...args], { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    ),
  );
}

/** The `config reloaded` / `config reload failed` lines of worker slot `index` since line `from`. */
function workerOutcomes(s: WorkerSet, index: number, from: number): string[] {
  return s.proxy.lines
    .slice(from)
    .filter((l) => l.worker === index && (l.msg === 'config reloaded' || l.msg === 'config reload failed'))
    .map((l) => l.msg);
}

/** Waits until each worker of `slots` has logged `count` outcome lines since `from` (a worker's lines may come after the supervisor's). */
function outcomesLogged(s: WorkerSet, slots: number[], from: number, count: number): Promise<unknown> {
  return s.proxy.waitFor(() => slots.every((i) => workerOutcomes(s, i, from).length >= count), { from, timeoutMs: 5_000 });
}

test('one worker of three rejects a reload (EMFILE): the set fails once, the two that applied it roll back, every worker serves the old config, no request fails; then a good config applies to all', async () => {
  requireNotifyTools();
  const a = await backendStarted();
  const b = await backendStarted();
  const dir = await tempDir();
  const sink = await startSink();
  const config = setConfig(a, dir);
  const s = await startSet(config, dir, sink);
  expect(everyWorkerOn(s, 'A')).toEqual(await upstreamByWorker(s, a, b));

  const expected = (await get(`${a.url}${INFO}`)).body.toString();
  const victimSlot = 2;
  const victim = s.workers().get(victimSlot)!;

  for (const via of ['SIGHUP', 'go-proxy-rewriter reload'] as const) {
    // Keep-alive clients on every worker meanwhile (memory HITs once warm: they need no new fd in the victim).
    const loop = startRequestLoop({ url: s.http, paths: [INFO], bodies: new Map([[INFO, expected]]), keepAliveWorkers: 9, closeWorkers: 0, timeoutMs: 10_000 });
    onTestFinished(() => loop.stop());
    await new Promise((resolve) => setTimeout(resolve, 500));

    // Config B: another upstream. The supervisor accepts it; the victim cannot open a file to load it.
    await writeConfigAtomic(s.configPath, { ...config, upstream: b.url });
    const restore = exhaustFds(victim);
    const from = s.proxy.lines.length;
    const notifyFrom = sink.messages().length;
    let failed: LogLine;
    if (via === 'SIGHUP') {
      s.proxy.signal('SIGHUP');
      failed = await outcome(s, from);
      restore();
    } else {
      const run = await cli(['reload', '--admin', s.admin]);
      restore();
      failed = await outcome(s, from);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`failed: 500 GPR_ERR_WORKER: worker ${victimSlot} (pid ${victim}) rejected the reload: `);
      expect(run.stderr).toContain('EMFILE');
    }
    expect(failed.msg).toBe('config reload failed');
    expect(failed.err).toMatchObject({ code: 'GPR_ERR_WORKER' });
    expect((failed.err as { message: string }).message).toMatch(new RegExp(`^worker ${victimSlot} \\(pid ${victim}\\) rejected the reload: .*EMFILE`));
    // The victim rejected it; the other two applied it and then took the old one back.
    await outcomesLogged(s, [victimSlot], from, 1);
    expect(workerOutcomes(s, victimSlot, from)).toEqual(['config reload failed']);
    await outcomesLogged(s, [0, 1], from, 2);
    for (const i of [0, 1]) expect(workerOutcomes(s, i, from)).toEqual(['config reloaded', 'config reloaded']);
    expect(s.proxy.logged('config reload failed').filter((l) => l.worker === undefined)).toHaveLength(via === 'SIGHUP' ? 1 : 2);

    // systemd sees one reload, failed: RELOADING=1, then READY=1 with the failure in STATUS=.
    const notified = await notifiedSince(sink, notifyFrom);
    expect(notified.map((m) => m.split('\n')[0])).toEqual(['RELOADING=1', 'READY=1']);
    expect(notified[1]).toContain(`STATUS=${WORKERS}/${WORKERS} workers; config generation 1; last reload: failed: GPR_ERR_WORKER`);

    await loop.stop();
    const bad = loop.attempts.filter((x) => !(x.status === 200 && x.bodyOk));
    expect(bad).toEqual([]);
    expect(loop.attempts.length).toBeGreaterThan(50);

    // Every worker, the two that rolled back and the one that rejected, asks upstream A again.
    expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'A'));
    expect(b.requests).toHaveLength(0);
  }
  // No worker died or was replaced for it.
  expect(s.workers().get(victimSlot)).toBe(victim);
  expect(s.proxy.logged('worker exited')).toHaveLength(0);

  // A good config (C: upstream B, nothing exhausted) applies to all three.
  const from = s.proxy.lines.length;
  const notifyFrom = sink.messages().length;
  s.proxy.signal('SIGHUP');
  const ok = await outcome(s, from);
  expect(ok).toMatchObject({ msg: 'config reloaded', generation: 2, workers: WORKERS });
  await outcomesLogged(s, [0, 1, 2], from, 1);
  for (const i of [0, 1, 2]) expect(workerOutcomes(s, i, from)).toEqual(['config reloaded']);
  const notified = await notifiedSince(sink, notifyFrom);
  expect(notified.map((m) => m.split('\n')[0])).toEqual(['RELOADING=1', 'READY=1']);
  expect(notified[1]).toContain('last reload: ok (generation 2)');
  const before = a.requests.length;
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'B'));
  expect(a.requests.length).toBe(before);

  const metrics = (await get(`${s.admin}/metrics`)).body.toString();
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="failed"')).toBe(2);
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="ok"')).toBe(1);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 90_000);

test('a worker killed (SIGKILL) while the supervisor waits for its reload answer: the failure is reported at once, the others roll back, the dead one restarts with the old config; the next reload applies to all', async () => {
  requireNotifyTools();
  const a = await backendStarted();
  const b = await backendStarted();
  const dir = await tempDir();
  const sink = await startSink();
  const config = setConfig(a, dir);
  const s = await startSet(config, dir, sink);
  const victimSlot = 1;
  const victim = s.workers().get(victimSlot)!;

  await writeConfigAtomic(s.configPath, { ...config, upstream: b.url });
  // Stopped, the victim cannot answer: the reload is certainly under way, waiting for it, when it dies.
  process.kill(victim, 'SIGSTOP');
  const from = s.proxy.lines.length;
  const notifyFrom = sink.messages().length;
  s.proxy.signal('SIGHUP');
  for (const i of [0, 2]) await s.proxy.waitFor((l) => l.worker === i && l.msg === 'config reloaded', { from });
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(s.proxy.lines.slice(from).filter((l) => l.worker === undefined && l.msg.startsWith('config reload'))).toEqual([]);
  const killedAt = Date.now();
  process.kill(victim, 'SIGKILL');

  // Reported within seconds (the answer timeout is 30 s), as a failure naming the dead worker.
  const failed = await outcome(s, from, 10_000);
  expect(failed.time - killedAt).toBeLessThan(3_000);
  expect(failed.msg).toBe('config reload failed');
  expect(failed.err).toMatchObject({ code: 'GPR_ERR_WORKER' });
  expect((failed.err as { message: string }).message).toBe(`worker ${victimSlot} (pid ${victim}) did not apply the reload: worker ${victimSlot} (pid ${victim}) exited (SIGKILL) before it answered`);
  const notified = await notifiedSince(sink, notifyFrom);
  expect(notified.map((m) => m.split('\n')[0])).toEqual(['RELOADING=1', 'READY=1']);
  expect(notified[1]).toContain('config generation 1; last reload: failed: GPR_ERR_WORKER');

  // The survivors applied it and took the old one back; the dead one is restarted, with the old config.
  await outcomesLogged(s, [0, 2], from, 2);
  for (const i of [0, 2]) expect(workerOutcomes(s, i, from)).toEqual(['config reloaded', 'config reloaded']);
  const restarted = await s.proxy.waitFor((l) => l.msg === 'worker ready' && l.worker === victimSlot, { from });
  expect(restarted.workerPid).not.toBe(victim);
  expect(s.workers().size).toBe(WORKERS);
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'A'));
  expect(b.requests).toHaveLength(0);
  // It started with the set's config; nothing had to catch it up.
  expect(workerOutcomes(s, victimSlot, from)).toEqual([]);

  // Run again: the config was never the problem, and now every worker, the restarted one too, takes it.
  const again = s.proxy.lines.length;
  s.proxy.signal('SIGHUP');
  expect(await outcome(s, again)).toMatchObject({ msg: 'config reloaded', generation: 2, workers: WORKERS });
  await outcomesLogged(s, [0, 1, 2], again, 1);
  for (const i of [0, 1, 2]) expect(workerOutcomes(s, i, again)).toEqual(['config reloaded']);
  const before = a.requests.length;
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'B'));
  expect(a.requests.length).toBe(before);

  const metrics = (await get(`${s.admin}/metrics`)).body.toString();
  expect(sample(metrics, 'gpr_worker_restarts_total', `worker="${victimSlot}"`)).toBe(1);
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="failed"')).toBe(1);
  expect(sample(metrics, 'gpr_config_reloads_total', 'result="ok"')).toBe(1);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 90_000);

test('a worker that does not answer within reload.workerTimeoutMs (SIGSTOP): the set fails, and once it runs again it ends on the old config too, not on the one it applied late', async () => {
  requireNotifyTools();
  const a = await backendStarted();
  const b = await backendStarted();
  const dir = await tempDir();
  const sink = await startSink();
  const config = { ...setConfig(a, dir), reload: { workerTimeoutMs: 1_500 } };
  const s = await startSet(config, dir, sink);
  const victimSlot = 0;
  const victim = s.workers().get(victimSlot)!;

  await writeConfigAtomic(s.configPath, { ...config, upstream: b.url });
  process.kill(victim, 'SIGSTOP');
  let stopped = true;
  onTestFinished(() => {
    if (stopped) process.kill(victim, 'SIGCONT');
  });
  const from = s.proxy.lines.length;
  const notifyFrom = sink.messages().length;
  const sentAt = Date.now();
  s.proxy.signal('SIGHUP');
  const failed = await outcome(s, from);
  expect(failed.time - sentAt).toBeGreaterThanOrEqual(1_400);
  expect(failed.time - sentAt).toBeLessThan(5_000);
  expect(failed.msg).toBe('config reload failed');
  expect((failed.err as { message: string }).message).toBe(
    `worker ${victimSlot} (pid ${victim}) did not apply the reload: worker ${victimSlot} (pid ${victim}) did not answer reload within 1500 ms`,
  );
  const notified = await notifiedSince(sink, notifyFrom);
  expect(notified.map((m) => m.split('\n')[0])).toEqual(['RELOADING=1', 'READY=1']);
  await outcomesLogged(s, [1, 2], from, 2);
  for (const i of [1, 2]) expect(workerOutcomes(s, i, from)).toEqual(['config reloaded', 'config reloaded']);

  // It runs again: it finds the new config and, queued behind it, the old one; it ends on the old one.
  process.kill(victim, 'SIGCONT');
  stopped = false;
  await s.proxy.waitFor((l) => l.worker === victimSlot && l.msg === 'config reloaded', { from });
  // (Without the queued rollback there is no second one: the assertions below then show it on upstream B.)
  await s.proxy.waitFor(() => workerOutcomes(s, victimSlot, from).length === 2, { from, timeoutMs: 5_000 }).catch(() => undefined);
  expect(workerOutcomes(s, victimSlot, from)).toEqual(['config reloaded', 'config reloaded']);
  expect(s.workers().get(victimSlot)).toBe(victim);
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'A'));
  expect(b.requests).toHaveLength(0);
  expect(s.proxy.logged('worker exited')).toHaveLength(0);

  const again = s.proxy.lines.length;
  s.proxy.signal('SIGHUP');
  expect(await outcome(s, again)).toMatchObject({ msg: 'config reloaded', generation: 2, workers: WORKERS });
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'B'));

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 90_000);

test('a worker restarted while a reload runs (it started with the old config) is brought to the new one when the reload succeeds', async () => {
  requireNotifyTools();
  const a = await backendStarted();
  const b = await backendStarted();
  const dir = await tempDir();
  const sink = await startSink();
  // No HTTPS listener: the fan-out follows the SIGHUP within milliseconds.
  const config = { ...setConfig(a, dir), listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' } };
  const s = await startSet(config, dir, sink);
  const slow = s.workers().get(2)!;
  await writeConfigAtomic(s.configPath, { ...config, upstream: b.url });

  // Worker 1 dies three times in a row: its restart now waits 400 ms (100, 200, 400), so the SIGHUP's
  // fan-out goes out while it is not running, and its restart starts with the old config.
  let from = s.proxy.lines.length;
  let dead = 0;
  for (let death = 1; death <= 3; death++) {
    if (death > 1) await s.proxy.waitFor((l) => l.msg === 'worker ready' && l.worker === 1, { from });
    from = s.proxy.lines.length;
    dead = s.workers().get(1)!;
    process.kill(dead, 'SIGKILL');
    expect(await s.proxy.waitFor((l) => l.msg === 'worker exited' && l.worker === 1, { from })).toMatchObject({ restartInMs: 100 * 2 ** (death - 1) });
  }
  // Worker 2 holds the reload open (stopped, within reload.workerTimeoutMs) while worker 1 restarts with the old config.
  process.kill(slow, 'SIGSTOP');
  let stopped = true;
  onTestFinished(() => {
    if (stopped) process.kill(slow, 'SIGCONT');
  });
  s.proxy.signal('SIGHUP');
  const restarted = await s.proxy.waitFor((l) => l.msg === 'worker ready' && l.worker === 1, { from });
  expect(restarted.workerPid).not.toBe(dead);
  process.kill(slow, 'SIGCONT');
  stopped = false;
  const ok = await outcome(s, from);
  // Worker 1 was not running when the reload went out: two workers took part.
  expect(ok).toMatchObject({ msg: 'config reloaded', generation: 2, workers: 2 });
  await s.proxy.waitFor(() => workerOutcomes(s, 1, from).length === 1, { from, timeoutMs: 5_000 }).catch(() => undefined);
  expect(workerOutcomes(s, 1, from)).toEqual(['config reloaded']);
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'B'));

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 90_000);

test('a worker that took the new config and then cannot take the old one back is restarted, and starts with the old one', async () => {
  requireNotifyTools();
  const a = await backendStarted();
  const b = await backendStarted();
  const dir = await tempDir();
  const sink = await startSink();
  const config = { ...setConfig(a, dir), reload: { workerTimeoutMs: 1_500 } };
  const s = await startSet(config, dir, sink);
  const late = s.workers().get(0)!;
  const stuck = s.workers().get(2)!;
  await writeConfigAtomic(s.configPath, { ...config, upstream: b.url });

  // Worker 0 will not answer in time (the reload fails); worker 2 takes the new config, then runs out of fds
  // before the previous config comes back (it reads the CA files again for it).
  process.kill(late, 'SIGSTOP');
  let stopped = true;
  onTestFinished(() => {
    if (stopped) process.kill(late, 'SIGCONT');
  });
  const from = s.proxy.lines.length;
  s.proxy.signal('SIGHUP');
  await s.proxy.waitFor((l) => l.worker === 2 && l.msg === 'config reloaded', { from });
  exhaustFds(stuck);
  const failed = await outcome(s, from);
  expect(failed.msg).toBe('config reload failed');
  expect((failed.err as { message: string }).message).toContain(`worker 0 (pid ${late}) did not apply the reload`);
  await outcomesLogged(s, [2], from, 2);
  expect(workerOutcomes(s, 2, from)).toEqual(['config reloaded', 'config reload failed']);
  expect(s.proxy.logged('worker did not take the previous config back: restarting it')).toMatchObject([{ worker: 2, workerPid: stuck }]);
  process.kill(late, 'SIGCONT');
  stopped = false;

  // It drains and exits 0 (SIGTERM), and its restart serves the old config.
  expect(await s.proxy.waitFor((l) => l.msg === 'worker exited' && l.worker === 2, { from })).toMatchObject({ workerPid: stuck, code: 0 });
  const restarted = await s.proxy.waitFor((l) => l.msg === 'worker ready' && l.worker === 2, { from });
  expect(restarted.workerPid).not.toBe(stuck);
  await s.proxy.waitFor(() => workerOutcomes(s, 0, from).length === 2, { from, timeoutMs: 5_000 }).catch(() => undefined);
  expect(workerOutcomes(s, 0, from)).toEqual(['config reloaded', 'config reloaded']);
  expect(await upstreamByWorker(s, a, b)).toEqual(everyWorkerOn(s, 'A'));
  expect(b.requests).toHaveLength(0);

  s.proxy.signal('SIGTERM');
  expect(await s.proxy.exited).toEqual({ code: 0, signal: null });
}, 90_000);
