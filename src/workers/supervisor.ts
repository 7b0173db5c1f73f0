/**
 * @module workers/supervisor
 * The main process when `workers` is more than 1 (nginx's master, Node's
 * cluster primary): it owns the listening sockets (adopted from systemd, or
 * bound here without accepting), the admin listener, sd_notify, signals and
 * the watchdog. It forks the workers (workers/worker.ts), hands each the
 * proxy sockets as inherited fds, fans a reload out to all of them (one
 * RELOADING=1/READY=1 for the set; failed, and the workers that took it
 * sent the old config back, if any worker rejects it, dies or is late),
 * drains them on SIGTERM, restarts a dead one with backoff, and answers
 * /metrics with every worker's registry aggregated in one scrape. It owns
 * the config watch (`reload.watch`: a change runs the same fan-out reload as
 * SIGHUP), fans the admin /cache routes out to the workers, and answers
 * /readyz with their upstream health.
 * Must not: accept a proxy connection or serve a proxy request itself.
 *
 * Why inherited fds and not node:cluster: cluster closes a shared listening
 * handle in the primary when its last worker lets go of it, so a
 * socket-activated fd would be gone after the only worker died. Here the
 * supervisor keeps every socket open for its whole life; a restarted worker
 * inherits the same fd, and connections wait in the kernel's backlog while
 * no worker accepts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import dns from 'node:dns/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import { getSystemErrorName } from 'node:util';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { createAdminHandler, type CacheAdmin } from '../admin.js';
import type { ListedObject } from '../cache/cache.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { watchConfigFile } from '../config/watch.js';
import { gprError, isGprError } from '../errors.js';
import { announce, createLogger, lifecycle, type Logger } from '../log.js';
import type { ReloadResult } from '../server.js';
import { coalescing } from '../server/reload.js';
import { createNotifier } from '../systemd/notify.js';
import { describeTarget, listenOn, listenTargets, type ListenRole, type ListenTarget } from '../systemd/sockets.js';
import { loadTlsMaterial, tlsFiles } from '../tls/material.js';
import { isMessage, workerCount, type CacheOp, type FromWorker, type ToWorker, type WorkerSocket } from './messages.js';

const WORKER_JS = fileURLToPath(new URL('./worker.js', import.meta.url));

/** How long every worker gets to start and report ready, in ms. */
export const WORKER_START_TIMEOUT_MS = 60_000;
/** How long a worker gets to answer a metrics request, in ms (a scrape leaves out a worker that is late). */
export const WORKER_METRICS_TIMEOUT_MS = 5_000;
/** How long a worker gets to answer a /cache route (a purge of a large disk tier takes a while), in ms. */
export const WORKER_CACHE_TIMEOUT_MS = 25_000;
/** How long a worker gets to report its upstream health for /readyz, in ms (a late one counts as unavailable). */
export const WORKER_HEALTH_TIMEOUT_MS = 2_000;
/** Restart backoff: the first restart waits this long, in ms, doubling per consecutive death... */
export const RESTART_BACKOFF_MIN_MS = 100;
/** ...up to this, in ms. */
export const RESTART_BACKOFF_MAX_MS = 10_000;
/** A worker that served this long before it died restarts after the minimum backoff again, in ms. */
export const RESTART_RESET_AFTER_MS = 10_000;

export interface SupervisorOptions {
  config: Config;
  /** Re-read on every reload; without it a reload re-applies `config`. */
  configPath?: string;
  /** Environment: LISTEN_FDS, NOTIFY_SOCKET, WATCHDOG_USEC, GPR_* overrides. Default process.env. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** When set, installs SIGHUP (reload) and SIGTERM/SIGINT (drain all, then `exit(0)`). */
  exit?: (code: number) => void;
}

/** What the supervisor shows its caller (main.ts, the bench). */
export interface Supervisor {
  /** Listening sockets: role and "host:port". */
  readonly listeners: ReadonlyArray<{ role: ListenRole; address: string }>;
  /** "http://HOST:PORT" of the first listener of `role`. */
  url(role: ListenRole): string;
  /** PIDs of the workers running now. */
  workerPids(): number[];
  reload(): Promise<ReloadResult>;
  close(): Promise<void>;
}

/**
 * Worker gauges that describe something shared, not a per-process amount:
 * the disk tier (one directory for all workers) and the upstream's health.
 * Summing would count them once per worker.
 */
const SHARED_GAUGES: Record<string, 'max' | 'min'> = {
  gpr_cache_disk_entries: 'max',
  gpr_cache_disk_bytes: 'max',
  // An entry is up only if every worker can use it.
  gpr_upstream_up: 'min',
};

/** A libuv TCP handle as net._createServerHandle returns it. */
interface TcpHandle {
  readonly fd: number;
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  close(): void;
}
type CreateServerHandle = (address: string | null, port: number | null, addressType: number | null, fd?: number) => TcpHandle | number;

/**
 * Binds without listen(2) (or wraps an adopted fd) and starts no accept
 * watcher: this process never takes a connection off the queue. It is the
 * function node:cluster's primary uses for the same job; Node exports it
 * (underscored) and offers no public way to bind without accepting.
 */
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;

interface HeldSocket {
  role: Exclude<ListenRole, 'admin'>;
  handle: TcpHandle;
  address: string;
  /** systemd's fd number, when adopted. */
  fd?: number;
}

interface Slot {
  index: number;
  child?: ChildProcess;
  ready: boolean;
  startedAt: number;
  /** Deaths in a row, for the backoff. */
  deaths: number;
  restartTimer?: NodeJS.Timeout;
  /** The config the worker serves now. */
  config?: Config;
}

function errorFields(error: Error): { code?: string; message: string } {
  return { code: isGprError(error) ? error.code : undefined, message: error.message };
}

async function hold(target: ListenTarget & { role: HeldSocket['role'] }): Promise<HeldSocket> {
  let handle: TcpHandle | number;
  if ('fd' in target) {
    handle = createServerHandle(null, null, null, target.fd);
  } else {
    let host: string | null = target.host || null;
    let family = 4;
    if (host !== null && net.isIP(host) === 0) {
      const found = await dns.lookup(host);
      host = found.address;
      family = found.family;
    } else if (host !== null) family = net.isIP(host);
    handle = createServerHandle(host, target.port, family);
  }
  if (typeof handle === 'number') {
    throw gprError('GPR_ERR_LISTEN', [describeTarget(target), target.role, getSystemErrorName(handle)]);
  }
  const out: { address?: string; port?: number; family?: string } = {};
  handle.getsockname(out);
  const address = out.family === 'IPv6' ? `[${out.address}]:${out.port}` : `${out.address}:${out.port}`;
  return { role: target.role, handle, address, ...('fd' in target ? { fd: target.fd } : {}) };
}

/** Starts the supervisor and its workers; resolves once every worker is ready (READY=1 is sent then). */
export async function startSupervisor(opts: SupervisorOptions): Promise<Supervisor> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? createLogger({ level: opts.config.log.level });
  const notifier = createNotifier(env, { onError: (err) => log.warn({ err: err.message }, 'sd_notify failed') });
  const count = workerCount(opts.config.workers, os.availableParallelism());
  let config = opts.config;
  let generation = 1;
  let lastReload = 'none';
  let draining = false;
  // Declared before the admin listener opens: a POST /reload can arrive while the workers start.
  // Reloads never overlap; signals that arrive during one cause one more pass.
  const reload = coalescing(reloadOnce);

  const targets = listenTargets(config.listen, env, process.pid);
  // The CA is created here, once, before the workers load it: two workers
  // creating it at the same moment would each write their own.
  if (targets.some((t) => t.role === 'https')) await loadTlsMaterial(config.tls, log);

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gpr_' });
  const registers = [registry];
  const restarts = new Counter({ name: 'gpr_worker_restarts_total', help: 'Workers restarted after they died, by worker slot', labelNames: ['worker'], registers });
  const reloads = new Counter({ name: 'gpr_config_reloads_total', help: 'Config reloads, by result', labelNames: ['result'], registers });
  new Gauge({ name: 'gpr_workers', help: 'Worker processes configured', registers, collect() { this.set(count); } });
  new Gauge({ name: 'gpr_workers_ready', help: 'Worker processes serving now', registers, collect() { this.set(slots.filter((s) => s.ready).length); } });

  const held: HeldSocket[] = [];
  const adminServers: http.Server[] = [];
  const listeners: Array<{ role: ListenRole; address: string }> = [];
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, ready: false, startedAt: 0, deaths: 0 }));

  // --- IPC requests with an id and a timeout ---
  let nextId = 0;
  const pending = new Map<number, { resolve: (m: FromWorker) => void; reject: (err: Error) => void; timer: NodeJS.Timeout; child: ChildProcess }>();
  function request(slot: Slot, message: ToWorker & { id: number }, timeoutMs: number): Promise<FromWorker> {
    const child = slot.child;
    return new Promise((resolve, reject) => {
      if (!child?.connected) return reject(new Error(`worker ${slot.index} is not running`));
      const timer = setTimeout(() => {
        pending.delete(message.id);
        reject(new Error(`worker ${slot.index} (pid ${child.pid}) did not answer ${message.t} within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(message.id, { resolve, reject, timer, child });
      child.send(message, (err) => {
        if (!err) return;
        clearTimeout(timer);
        pending.delete(message.id);
        reject(err);
      });
    });
  }
  /** A worker that exited answers nothing: its open requests fail now, not after their timeout (a reload would wait 30 s for a dead worker). */
  function abandon(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    for (const [id, p] of pending) {
      if (p.child !== child) continue;
      pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error(`worker ${slot.index} (pid ${child.pid}) exited (${signal ?? code}) before it answered`));
    }
  }
  function answered(message: FromWorker): void {
    if (!('id' in message)) return;
    const p = pending.get(message.id);
    if (!p) return;
    pending.delete(message.id);
    clearTimeout(p.timer);
    p.resolve(message);
  }

  // --- workers ---
  let started = false;
  let startFailed: ((err: Error) => void) | undefined;

  function spawnWorker(slot: Slot): Promise<void> {
    const workerEnv = { ...env };
    for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete workerEnv[name];
    // fd 3, 4, ... in the worker: the held sockets, in order; the IPC channel after them.
    const child = fork(WORKER_JS, [], { env: workerEnv, stdio: ['inherit', 'inherit', 'inherit', ...held.map((h) => h.handle.fd), 'ipc'] });
    slot.child = child;
    slot.ready = false;
    slot.startedAt = Date.now();
    slot.config = config;
    const sockets: WorkerSocket[] = held.map((h, i) => ({ role: h.role, fd: 3 + i }));
    return new Promise<void>((resolve, reject) => {
      child.on('message', (message: unknown) => {
        if (!isMessage<FromWorker>(message)) return;
        if (message.t === 'ready') {
          slot.ready = true;
          log.info({ worker: slot.index, workerPid: child.pid }, 'worker ready');
          resolve();
          // A reload finished while this one was starting with the config before it.
          if (slot.config !== config) catchUp(slot);
        } else if (message.t === 'failed') {
          reject(gprError('GPR_ERR_WORKER', [slot.index, child.pid ?? 0, `${message.code ? `${message.code}: ` : ''}${message.message}`]));
        } else answered(message);
      });
      child.once('exit', (code, signal) => {
        abandon(slot, child, code, signal);
        reject(gprError('GPR_ERR_WORKER', [slot.index, child.pid ?? 0, `exited (${signal ?? code}) before it was ready`]));
        onExit(slot, child, code, signal);
      });
      child.send({ t: 'start', index: slot.index, config, sockets } satisfies ToWorker);
    });
  }

  function onExit(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = undefined;
    slot.ready = false;
    if (draining) return;
    if (!started) return startFailed?.(gprError('GPR_ERR_WORKER', [slot.index, child.pid ?? 0, `exited (${signal ?? code}) during start`]));
    if (Date.now() - slot.startedAt >= RESTART_RESET_AFTER_MS) slot.deaths = 0;
    const delayMs = Math.min(RESTART_BACKOFF_MIN_MS * 2 ** slot.deaths, RESTART_BACKOFF_MAX_MS);
    slot.deaths += 1;
    restarts.inc({ worker: String(slot.index) });
    // A worker's death is an event the supervisor handles, never a stop of the service.
    log.error({ worker: slot.index, workerPid: child.pid, code, signal, restartInMs: delayMs }, 'worker exited');
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (draining) return;
      spawnWorker(slot).catch((err: Error) => log.error({ worker: slot.index, err: errorFields(err) }, 'worker restart failed'));
    }, delayMs);
  }

  function live(): Slot[] {
    return slots.filter((s) => s.child?.connected);
  }

  // --- admin routes answered by the workers ---
  function serving(): Slot[] {
    return slots.filter((s) => s.ready && s.child?.connected);
  }

  /** /readyz: true while at least one serving worker has an upstream entry that is not cooling down. */
  async function upstreamsAvailable(): Promise<boolean> {
    const answers = await Promise.all(
      serving().map((slot) =>
        request(slot, { t: 'ping', id: ++nextId }, WORKER_HEALTH_TIMEOUT_MS).then(
          (a) => a.t === 'pong' && a.upstreamsAvailable,
          () => false,
        ),
      ),
    );
    return answers.includes(true);
  }

  /** Runs a /cache operation in every serving worker; any failure fails the whole route. */
  async function everyWorker(op: CacheOp, module?: string, version?: string): Promise<unknown[]> {
    const slotsNow = serving();
    if (slotsNow.length === 0) throw new Error('no worker is serving');
    // One at a time: the workers share the disk tier, and two purges of one directory would race on the same files.
    const results: unknown[] = [];
    for (const slot of slotsNow) {
      const a = await request(slot, { t: 'cache', id: ++nextId, op, module, version }, WORKER_CACHE_TIMEOUT_MS);
      if (a.t !== 'cache') throw new Error(`worker ${slot.index} answered ${a.t} to a cache request`);
      if (!a.ok) throw new Error(`worker ${slot.index}: ${a.message}`);
      results.push(a.result);
    }
    return results;
  }

  /** The memory tiers are per worker, the disk tier is shared: objects are listed once per key and tier. */
  function mergeObjects(lists: unknown[]): ListedObject[] {
    const seen = new Map<string, ListedObject>();
    for (const o of (lists as ListedObject[][]).flat()) if (!seen.has(`${o.key}\0${o.tier}`)) seen.set(`${o.key}\0${o.tier}`, o);
    return [...seen.values()].sort((a, b) => a.key.localeCompare(b.key) || a.tier.localeCompare(b.tier));
  }

  const cacheAdmin: CacheAdmin = {
    list: async (module) => mergeObjects(await everyWorker('list', module)),
    // Purge reaches every worker's memory tier; the disk tier's files go with the first, the others find none left.
    purge: async (module, version) => ((await everyWorker('purge', module, version)) as ListedObject[][]).flat(),
    async stats() {
      type Stats = { memory: { entries: number; bytes: number; maxBytes: number }; disk: unknown; fills: number; fillBytes: number; requests: Record<string, number> };
      const all = (await everyWorker('stats')) as Stats[];
      const sum = (pick: (s: Stats) => number) => all.reduce((n, s) => n + pick(s), 0);
      const requests: Record<string, number> = {};
      for (const s of all) for (const [k, v] of Object.entries(s.requests)) requests[k] = (requests[k] ?? 0) + v;
      return {
        workers: all.length,
        // Summed over the workers: each has a memory tier of its own.
        memory: { entries: sum((s) => s.memory.entries), bytes: sum((s) => s.memory.bytes), maxBytes: sum((s) => s.memory.maxBytes) },
        disk: all[0]?.disk ?? null,
        fills: sum((s) => s.fills),
        fillBytes: sum((s) => s.fillBytes),
        requests,
      };
    },
  };

  // --- listeners ---
  const admin = createAdminHandler({
    metrics: { registry: { contentType: registry.contentType, metrics: scrape } },
    ready: () => !draining && slots.every((s) => s.ready),
    upstreamsAvailable,
    cache: cacheAdmin,
    // POST /reload (`go-proxy-rewriter reload`, systemctl reload): the whole set's outcome.
    reload: () => reload(),
  });
  try {
    for (const target of targets) {
      if (target.role === 'admin') {
        const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 60_000 }, admin);
        await listenOn(server, target);
        adminServers.push(server);
        const a = server.address() as AddressInfo;
        listeners.push({ role: 'admin', address: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}` });
      } else {
        const h = await hold({ ...target, role: target.role });
        held.push(h);
        listeners.push({ role: h.role, address: h.address });
      }
      const l = listeners[listeners.length - 1];
      announce(log, 'info', { role: target.role, address: l?.address, fd: 'fd' in target ? target.fd : undefined, workers: target.role === 'admin' ? undefined : count }, lifecycle.listening);
    }
    await new Promise<void>((resolve, reject) => {
      startFailed = reject;
      const timer = setTimeout(() => reject(new Error(`workers not ready within ${WORKER_START_TIMEOUT_MS} ms`)), WORKER_START_TIMEOUT_MS);
      Promise.all(slots.map(spawnWorker)).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    started = true;
  } catch (err) {
    draining = true;
    for (const s of slots) s.child?.kill('SIGKILL');
    for (const h of held) h.handle.close();
    for (const s of adminServers) s.close();
    throw err;
  }

  // --- metrics: one scrape, every worker ---
  async function scrape(): Promise<string> {
    /** One metric of prom-client's getMetricsAsJSON(), as far as we read it. */
    type MetricJson = { name: string; values?: Array<{ value: number }> };
    type Metrics = MetricJson[];
    const parts = await Promise.all(
      live().map(async (slot) => {
        try {
          const answer = await request(slot, { t: 'metrics', id: ++nextId }, WORKER_METRICS_TIMEOUT_MS);
          return answer.t === 'metrics' ? { slot, metrics: answer.metrics as Metrics } : undefined;
        } catch (err) {
          log.warn({ worker: slot.index, err: errorFields(err as Error) }, 'worker metrics missing from a scrape');
          return undefined;
        }
      }),
    );
    const got = parts.filter((p) => p !== undefined);
    // The one per-worker series: how the kernel spread the connections.
    const perWorker = {
      name: 'gpr_worker_requests_total',
      help: 'Requests answered by each worker process since it started',
      type: 'counter',
      aggregator: 'sum',
      values: got.map(({ slot, metrics }) => {
        const requests = metrics.find((m) => m.name === 'gpr_requests_total');
        return { labels: { worker: String(slot.index) }, value: (requests?.values ?? []).reduce((n, v) => n + v.value, 0) };
      }),
    };
    // The supervisor's own reload counter stands for the set: a worker's reloads (and rollbacks) are not counted twice.
    // Gauges that are not per process are not summed: see SHARED_GAUGES.
    const workerParts = got.map(({ metrics }) =>
      metrics.filter((m) => m.name !== 'gpr_config_reloads_total').map((m) => (m.name in SHARED_GAUGES ? { ...m, aggregator: SHARED_GAUGES[m.name] } : m)),
    );
    const aggregated = AggregatorRegistry.aggregate([await registry.getMetricsAsJSON(), ...workerParts, [perWorker]]);
    return aggregated.metrics();
  }

  // --- reload: read once here, apply in every worker ---
  function statusLine(): string {
    return `${slots.filter((s) => s.ready).length}/${count} workers; config generation ${generation}; last reload: ${lastReload}`;
  }

  async function reloadSlot(slot: Slot, next: Config): Promise<FromWorker> {
    const child = slot.child;
    // How long a worker gets to apply a reload: the setting of the config the set serves.
    const answer = await request(slot, { t: 'reload', id: ++nextId, config: next }, config.reload.workerTimeoutMs);
    if (answer.t === 'reloaded' && answer.ok && slot.child === child) slot.config = next;
    return answer;
  }

  /**
   * A worker that serves a config other than the set's (it was forked while a
   * reload ran) is sent the set's config; one that cannot apply it is
   * restarted, and starts with it.
   */
  function catchUp(slot: Slot): void {
    const child = slot.child;
    const target = config;
    reloadSlot(slot, target)
      .then((a) => {
        if (a.t === 'reloaded' && a.ok) return;
        throw new Error(a.t === 'reloaded' && !a.ok ? `${a.code ? `${a.code}: ` : ''}${a.message}` : `answered ${a.t}`);
      })
      .catch((err: Error) => {
        if (slot.child !== child || !child?.connected || draining) return;
        log.error({ worker: slot.index, workerPid: child.pid, err: errorFields(err) }, 'worker did not take the current config: restarting it');
        child.kill('SIGTERM');
      });
  }

  async function reloadOnce(): Promise<ReloadResult> {
    void notifier.reloading();
    try {
      const next = opts.configPath ? await loadConfig(opts.configPath, env) : config;
      // As at the start: the CA a new tls.dir needs is created here, once (workers creating it at
      // the same moment race: one can read the certificate before the key is written, and reject),
      // and certificate material every worker would reject fails the reload before any worker sees it.
      if (targets.some((t) => t.role === 'https')) await loadTlsMaterial(next.tls, log);
      const targetsNow = live();
      const answers = await Promise.all(
        targetsNow.map((slot) => {
          const child = slot.child;
          return reloadSlot(slot, next).then(
            (a) => ({ slot, child, ok: a.t === 'reloaded' && a.ok, rejectedByWorker: a.t === 'reloaded' && !a.ok, why: a.t === 'reloaded' && !a.ok ? `${a.code ? `${a.code}: ` : ''}${a.message}` : '' }),
            (err: Error) => ({ slot, child, ok: false, rejectedByWorker: false, why: err.message }),
          );
        }),
      );
      const rejected = answers.filter((a) => !a.ok);
      if (rejected.length) {
        // All or nothing: the workers that took the new config go back to the one the set serves.
        const back = await Promise.all(
          answers.filter((a) => a.ok).map((a) =>
            reloadSlot(a.slot, config).then(
              (b) => b.t === 'reloaded' && b.ok,
              () => false,
            ),
          ),
        );
        // One that took the new config and cannot take the old one back is restarted: it starts with the old one.
        answers.filter((a) => a.ok).forEach((a, i) => {
          if (back[i] || !a.slot.child?.connected) return;
          log.error({ worker: a.slot.index, workerPid: a.slot.child.pid }, 'worker did not take the previous config back: restarting it');
          a.slot.child.kill('SIGTERM');
        });
        // One that did not answer in time may still apply the new config later: the old one is queued behind it
        // (a worker applies reloads in order), without waiting for a worker that is not answering.
        for (const a of answers) {
          if (a.ok || a.rejectedByWorker || !a.slot.child?.connected || a.slot.child !== a.child) continue;
          catchUp(a.slot);
        }
        const first = rejected[0];
        throw gprError('GPR_ERR_WORKER', [first?.slot.index ?? -1, first?.child?.pid ?? 0, `${first?.rejectedByWorker ? 'rejected the reload' : 'did not apply the reload'}: ${first?.why ?? ''}`]);
      }
      if (JSON.stringify(next.listen) !== JSON.stringify(config.listen)) log.warn({ listen: next.listen }, 'listen addresses changed: they take effect on restart');
      if (next.workers !== config.workers) log.warn({ workers: next.workers }, 'workers changed: it takes effect on restart');
      config = next;
      generation += 1;
      // A worker forked while this reload ran (a restart) started with the config before it.
      for (const slot of slots) if (slot.ready && slot.child?.connected && slot.config !== config) catchUp(slot);
      log.level = next.log.level;
      reloads.inc({ result: 'ok' });
      lastReload = `ok (generation ${generation})`;
      announce(log, 'info', { generation, workers: targetsNow.length, upstream: next.upstream, rewrite: next.rewrite }, lifecycle.reloaded);
      return { ok: true, generation };
    } catch (err) {
      const error = err as Error;
      reloads.inc({ result: 'failed' });
      lastReload = `failed: ${isGprError(error) ? error.code : error.message}`;
      announce(log, 'error', { err: errorFields(error) }, lifecycle.reloadFailed);
      return { ok: false, error };
    } finally {
      // Awaited: `systemctl reload` (POST /reload) returns only once systemd has READY=1 and the new STATUS=.
      await notifier.ready(statusLine());
    }
  }


  // --- reload.watch: the supervisor alone watches (a worker gets no path); a change reloads the whole set ---
  const watchPath = config.reload.watch ? opts.configPath : undefined;
  const stopWatching =
    watchPath === undefined
      ? undefined
      : watchConfigFile({
          path: watchPath,
          debounceMs: config.reload.debounceMs,
          pollMs: config.reload.pollMs,
          alsoWatch: () => tlsFiles(config.tls),
          onChange: () => {
            log.info({ path: watchPath }, 'config file changed');
            return reload();
          },
          onWatchError: (err) => log.warn({ path: watchPath, err: err.message }, 'config directory watch failed: polling only'),
        });

  // --- watchdog: ping systemd only while every worker answers ---
  let watchdogTimer: NodeJS.Timeout | undefined;
  const everyMs = notifier.watchdogIntervalMs;
  if (everyMs !== null) {
    let ticking = false;
    const tick = async () => {
      if (ticking || draining) return;
      ticking = true;
      const answers = await Promise.all(
        slots.map((slot) =>
          slot.ready
            ? request(slot, { t: 'ping', id: ++nextId }, everyMs).then(
                () => true,
                () => false,
              )
            : Promise.resolve(false),
        ),
      );
      ticking = false;
      const silent = slots.filter((_, i) => !answers[i]).map((s) => s.index);
      if (silent.length === 0) void notifier.send('WATCHDOG=1');
      else log.warn({ workers: silent }, 'watchdog: not every worker answers; no ping this time');
    };
    void tick();
    watchdogTimer = setInterval(() => void tick(), everyMs);
    watchdogTimer.unref();
  }

  // --- drain ---
  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      draining = true;
      stopWatching?.();
      const underway = reload.pending();
      if (underway) await underway;
      void notifier.stopping();
      clearInterval(watchdogTimer);
      announce(log, 'info', { workers: live().length }, lifecycle.draining);
      for (const s of slots) clearTimeout(s.restartTimer);
      const exits = slots.map((slot) => {
        const child = slot.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          if (child.connected) child.send({ t: 'stop' } satisfies ToWorker, () => undefined);
          else child.kill('SIGTERM');
        });
      });
      // The workers closed their copies at once: so does the supervisor, so new
      // connections are refused (or wait in systemd's socket) instead of
      // queueing on a socket nobody will accept on again.
      for (const h of held) h.handle.close();
      // Each worker drains for up to drainTimeoutMs itself; a worker that hangs beyond that is killed.
      const limitMs = config.shutdown.drainTimeoutMs + 5_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.all(exits).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), limitMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        log.warn({ timeoutMs: limitMs }, 'workers still running after the drain: killing them');
        for (const s of slots) s.child?.kill('SIGKILL');
        await Promise.all(exits);
      }
      await Promise.all(
        adminServers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      await notifier.close();
      log.info({}, lifecycle.stopped);
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    })();
    return closing;
  }

  if (opts.exit) {
    const exit = opts.exit;
    process.on('SIGHUP', () => void reload());
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        for (const s of slots) s.child?.kill('SIGKILL');
        log.flush();
        return exit(1);
      }
      stopping = true;
      close().then(
        () => exit(0),
        () => exit(1),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  }

  void notifier.ready(statusLine());

  return {
    listeners,
    url(role) {
      const l = listeners.find((x) => x.role === role);
      if (!l) throw new Error(`no ${role} listener`);
      return `${role === 'https' ? 'https' : 'http'}://${l.address}`;
    },
    workerPids: () => slots.flatMap((s) => (s.child?.pid !== undefined && s.ready ? [s.child.pid] : [])),
    reload,
    close,
  };
}
