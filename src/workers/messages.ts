/**
 * @module workers/messages
 * The IPC messages between the supervisor (the main process when `workers`
 * is more than 1) and its worker processes, over the channel
 * child_process.fork() opens. Every message is plain JSON with a `t` tag; a
 * request carries an `id` that its answer repeats.
 * Must not: do I/O (pure types and guards).
 */
import type { Config } from '../config/schema.js';
import type { ListenRole } from '../systemd/sockets.js';

/** A listening socket a worker inherits: `fd` is its number in the worker. */
export interface WorkerSocket {
  readonly role: Exclude<ListenRole, 'admin'>;
  readonly fd: number;
}

/** Supervisor -> worker. */
export type ToWorker =
  /** First message: serve `config` on `sockets` (already listening or bound; never rebind). */
  | { t: 'start'; index: number; config: Config; sockets: WorkerSocket[] }
  /** Apply `config` (the supervisor read and validated it); answer `reloaded`. */
  | { t: 'reload'; id: number; config: Config }
  /** Answer `metrics` with the registry as prom-client JSON. */
  | { t: 'metrics'; id: number }
  /** Answer `pong` (the watchdog: the event loop turns; /readyz: the upstreams). */
  | { t: 'ping'; id: number }
  /** The admin listener's cache routes on this worker's cache (memory tier its own, disk tier shared); answer `cache`. */
  | { t: 'cache'; id: number; op: CacheOp; module?: string; version?: string }
  /** Drain (shutdown.drainTimeoutMs), then exit 0. */
  | { t: 'stop' };

/** Worker -> supervisor. */
export type FromWorker =
  | { t: 'ready'; pid: number }
  /** The start failed; the worker exits 1 after sending this. */
  | { t: 'failed'; code?: string; message: string }
  | { t: 'reloaded'; id: number; ok: true; generation: number }
  | { t: 'reloaded'; id: number; ok: false; code?: string; message: string }
  /** prom-client `getMetricsAsJSON()` output. */
  | { t: 'metrics'; id: number; metrics: unknown[] }
  /** `upstreamsAvailable`: false when every upstream entry of this worker is cooling down. */
  | { t: 'pong'; id: number; upstreamsAvailable: boolean }
  | { t: 'cache'; id: number; ok: true; result: unknown }
  | { t: 'cache'; id: number; ok: false; message: string };

/** The cache admin operations a worker runs for the supervisor (admin.ts's /cache routes). */
export type CacheOp = 'list' | 'stats' | 'purge';

/** True for a message of ours (an object with a string `t`). */
export function isMessage<T extends { t: string }>(value: unknown): value is T {
  return typeof value === 'object' && value !== null && typeof (value as { t?: unknown }).t === 'string';
}

/** The worker count `workers` asks for: "auto" is every core Node may use. */
export function workerCount(workers: number | 'auto', cores: number): number {
  return workers === 'auto' ? Math.max(1, cores) : workers;
}
