/**
 * @module systemd/notify
 * Tells systemd how the service is doing (sd_notify(3)): READY=1 once the
 * listeners are up, RELOADING=1 / READY=1 around a config reload, STOPPING=1
 * when draining starts, STATUS= lines, and WATCHDOG=1 keep-alive pings.
 * Must not: throw into the caller (failures go to `onError`), reorder
 * messages, keep the process alive (timers are unref'd), or change `env`.
 *
 * Mechanism: one `systemd-notify VAR=VALUE...` child per message, run one at
 * a time. Node cannot send an AF_UNIX datagram itself (node:dgram has no
 * unix sockets), and the alternatives were worse:
 * - sd-notify 2.8.0 (npm, native) needs libsystemd-dev headers at install and
 *   fails to build without them; unix-dgram 2.0.7 (npm, native, nan) builds
 *   with node-gyp here, but either adds a compiler to every deploy and a
 *   rebuild per Node ABI.
 * - socat or python3 in a child: not on every build host, while
 *   systemd-notify comes with systemd, the only thing that sets NOTIFY_SOCKET.
 * Costs of the choice: a fork+exec per message (a ping every WatchdogSec/2 =
 * 15 s is nothing), and the unit needs `NotifyAccess=all`, because the sender
 * is the child. (systemd-notify claims its parent's PID in SCM_CREDENTIALS,
 * but only CAP_SYS_ADMIN may do that; as the DynamicUser it falls back to its
 * own PID.) The sender exits right after sending, which would let systemd
 * drop the message as unattributable (systemd-notify(1)); systemd-notify
 * (since systemd 246, Debian 12 has 252) therefore waits on a BARRIER=1
 * until the manager has processed it, which also keeps our order at the
 * manager. Do not pass --no-block.
 * systemd 252's systemd-notify has no --reloading/--stopping, so every
 * message is sent as raw VAR=VALUE arguments, which it forwards verbatim.
 *
 * NOTIFY_SOCKET is left in `env` (sd_notify's unset_environment=0): the proxy
 * spawns no children but systemd-notify, which is handed the socket
 * explicitly, and with NotifyAccess=all any process of the unit may notify
 * anyway; unsetting would only make a second createNotifier() (tests, a
 * restart of the server in-process) silently disabled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { gprError, type GprError } from '../errors.js';

/** Options of {@link createNotifier}. */
export interface NotifierOptions {
  /** Receives a GPR_ERR_NOTIFY error for each message that could not be sent. Default: ignore. */
  readonly onError?: (err: GprError) => void;
  /** The sender command, looked up in env.PATH. Default `systemd-notify`. */
  readonly command?: string;
  /** Our process id, compared with WATCHDOG_PID. Default `process.pid`. */
  readonly pid?: number;
  /** Kill a sender that has not exited after this many ms. Default 10000 (its barrier gives up after 5000). */
  readonly timeoutMs?: number;
}

/** Sends sd_notify messages, in call order; every method resolves, never rejects. */
export interface Notifier {
  /** True when NOTIFY_SOCKET is set; otherwise every method does nothing. */
  readonly enabled: boolean;
  /** Watchdog ping interval in ms (WATCHDOG_USEC / 2), or null when there is no watchdog for us. */
  readonly watchdogIntervalMs: number | null;
  /** Sends one datagram of `VAR=VALUE` assignments. Resolves once systemd processed it (or it failed). */
  send(...assignments: string[]): Promise<void>;
  /** `READY=1`, with `STATUS=` when given: after start-up and after each reload. */
  ready(status?: string): Promise<void>;
  /** `RELOADING=1` and `MONOTONIC_USEC=` (CLOCK_MONOTONIC, µs, taken now): a reload has begun. */
  reloading(): Promise<void>;
  /** `STOPPING=1`: shutdown (drain) has begun. */
  stopping(): Promise<void>;
  /** `STATUS=<line>`: free-form status shown by `systemctl status`; newlines become spaces. */
  status(line: string): Promise<void>;
  /** Sends `WATCHDOG=1` now and every {@link Notifier.watchdogIntervalMs}; no-op without a watchdog. */
  startWatchdog(): void;
  /** Stops the pings. */
  stopWatchdog(): void;
  /** Stops the pings, waits for queued messages; later calls send nothing. */
  close(): Promise<void>;
}

const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=[^\n]*$/;

/** CLOCK_MONOTONIC in µs: on Linux process.hrtime is clock_gettime(CLOCK_MONOTONIC) (libuv uv_hrtime). */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/**
 * The watchdog ping interval sd_watchdog_enabled(3) asks for.
 * @returns WATCHDOG_USEC / 2 in ms when WATCHDOG_USEC is a positive integer and
 *   WATCHDOG_PID is unset or `pid`; otherwise null.
 */
export function watchdogIntervalMs(env: Record<string, string | undefined>, pid: number): number | null {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined || !/^[0-9]+$/.test(usec) || Number(usec) === 0) return null;
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== String(pid)) return null;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/**
 * Makes the notifier for this process.
 * @param env - read once, here: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID, PATH, MANAGERPID.
 */
export function createNotifier(env: NodeJS.ProcessEnv, options: NotifierOptions = {}): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const enabled = socket !== undefined && socket !== '';
  const command = options.command ?? 'systemd-notify';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pingEveryMs = enabled ? watchdogIntervalMs(env, options.pid ?? process.pid) : null;
  // Only what systemd-notify reads; MANAGERPID keeps it from claiming a --user manager's PID.
  const childEnv: NodeJS.ProcessEnv = { PATH: env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', NOTIFY_SOCKET: socket };
  if (env.MANAGERPID !== undefined) childEnv.MANAGERPID = env.MANAGERPID;

  let tail: Promise<void> = Promise.resolve();
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let pingQueued = false;

  function report(reason: string, cause?: unknown): void {
    try {
      options.onError?.(gprError('GPR_ERR_NOTIFY', [reason], cause));
    } catch {
      // A throwing onError must not break the queue; there is nobody left to tell.
    }
  }

  function run(assignments: readonly string[]): Promise<void> {
    const what = assignments.join(' ');
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        // `--` so that no assignment is read as an option.
        child = spawn(command, ['--', ...assignments], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (err) {
        // spawn() throws synchronously for unusable arguments (e.g. a NUL byte).
        report(`cannot run ${command} (${what}): ${err instanceof Error ? err.message : String(err)}`, err);
        resolve();
        return;
      }
      const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      killer.unref();
      let settled = false;
      const settle = (problem?: string, cause?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(killer);
        if (problem !== undefined) report(problem, cause);
        resolve();
      };
      let stderr = '';
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (chunk: string) => {
        if (stderr.length < 2000) stderr += chunk;
      });
      child.once('error', (err) => settle(`cannot run ${command} (${what}): ${err.message}`, err));
      child.once('close', (code, signal) => {
        if (code === 0) settle();
        else settle(`${command} ${what} ${signal === null ? `exited with ${code}` : `was killed by ${signal}`}: ${oneLine(stderr.trim()) || 'no message'}`);
      });
    });
  }

  function enqueue(assignments: readonly string[], onStart?: () => void): Promise<void> {
    if (!enabled || closed) return Promise.resolve();
    const bad = assignments.find((a) => !ASSIGNMENT.test(a));
    if (bad !== undefined) {
      report(`'${oneLine(bad)}' is not a VAR=VALUE assignment on one line`);
      return Promise.resolve();
    }
    tail = tail.then(() => {
      onStart?.();
      return run(assignments);
    });
    return tail;
  }

  function ping(): void {
    // Skip a tick rather than pile pings up behind a stuck sender.
    if (pingQueued) return;
    pingQueued = true;
    void enqueue(['WATCHDOG=1'], () => {
      pingQueued = false;
    });
  }

  function stopWatchdog(): void {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  }

  return {
    enabled,
    watchdogIntervalMs: pingEveryMs,
    send: (...assignments) => enqueue(assignments),
    ready: (status) => enqueue(status === undefined ? ['READY=1'] : ['READY=1', `STATUS=${oneLine(status)}`]),
    reloading: () => enqueue(['RELOADING=1', `MONOTONIC_USEC=${monotonicUsec()}`]),
    stopping: () => enqueue(['STOPPING=1']),
    status: (line) => enqueue([`STATUS=${oneLine(line)}`]),
    startWatchdog() {
      if (pingEveryMs === null || closed || timer !== undefined) return;
      ping();
      timer = setInterval(ping, pingEveryMs);
      timer.unref();
    },
    stopWatchdog,
    close() {
      stopWatchdog();
      closed = true;
      return tail;
    },
  };
}
