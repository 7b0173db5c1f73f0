/**
 * @module bench/procs
 * The benchmark's child processes: spawning bench/serve.ts roles and
 * bench/serve-proxy.mjs and waiting for their ready message, a registry that
 * stops every child by PID on exit, error or signal, and /proc readings
 * (VmRSS, CPU ticks, children).
 * Must not: kill anything it did not start, or by name.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChildMessage } from './serve.js';

const SERVE = fileURLToPath(new URL('./serve.ts', import.meta.url));
const SERVE_PROXY = fileURLToPath(new URL('./serve-proxy.mjs', import.meta.url));

/** Node arguments of a bench/serve.ts role (through tsx). */
export function serveArgs(role: 'backend' | 'minimal', arg?: string): string[] {
  return ['--import', 'tsx', SERVE, role, ...(arg ? [arg] : [])];
}

/** Node arguments of the proxy under test (compiled dist/, no loader); `nodeFlags` go first. */
export function proxyArgs(configPath: string, nodeFlags: string[] = []): string[] {
  return [...nodeFlags, SERVE_PROXY, configPath];
}
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/** A started process: its PID and how to stop it. */
export interface Proc {
  name: string;
  pid: number;
  /** Every PID whose CPU counts for this process (nginx: master and workers). */
  pids(): number[];
  /** SIGTERM, then SIGKILL after a grace period; resolves once it exited. */
  stop(): Promise<void>;
}

const running = new Set<Proc>();

/** Registers a process so {@link stopAll} stops it. */
export function track(proc: Proc): Proc {
  running.add(proc);
  return proc;
}

/** Stops every tracked process (in parallel), by PID. Safe to call twice. */
export async function stopAll(): Promise<void> {
  const procs = [...running];
  running.clear();
  await Promise.all(procs.map((p) => p.stop().catch(() => undefined)));
}

/** Sends `signal` to `pid`; false when it is already gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `child` exits, sending SIGKILL if SIGTERM did not do it within the grace period. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  const pid = child.pid;
  return new Promise((resolve) => {
    const killTimer = setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(killTimer);
      resolve();
    });
    if (!signal(pid, 'SIGTERM')) {
      clearTimeout(killTimer);
      resolve();
    }
  });
}

/** A bench/serve.ts child with an IPC channel. */
export interface ServeChild extends Proc {
  ready: Record<string, string>;
  /** process.memoryUsage() of the child after a full GC. */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** Sends an IPC message and resolves with the first answer `pick` accepts (5 s timeout). */
  ask<T>(message: object, pick: (m: ChildMessage) => T | undefined): Promise<T>;
}

/**
 * Starts `node --expose-gc <args>` ({@link serveArgs} or {@link proxyArgs})
 * with an IPC channel; stdout goes to `stdoutFile` (the proxy's pino log),
 * stderr to `stderrFile`. Resolves with its ready message, rejects when it
 * exits first or stays silent for 30 s.
 */
export async function startServe(name: string, args: string[], stdoutFile: string, stderrFile: string): Promise<ServeChild> {
  const out = openSync(stdoutFile, 'w');
  const err = openSync(stderrFile, 'w');
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('GPR_') || key.startsWith('LISTEN_') || key === 'NOTIFY_SOCKET') delete env[key];
  const child = spawn(process.execPath, ['--expose-gc', ...args], {
    stdio: ['ignore', out, err, 'ipc'],
    env,
  });
  closeSync(out);
  closeSync(err);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: spawn failed`);
  const proc: ServeChild = {
    name,
    pid,
    ready: {},
    // With `workers` > 1 the proxy's workers are its children: their CPU counts too.
    pids: () => [pid, ...childPids(pid)],
    stop: () => stopChild(child),
    ask: <T>(message: object, pick: (m: ChildMessage) => T | undefined) =>
      new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no answer to ${JSON.stringify(message)}`)), 5_000);
        const onMessage = (m: ChildMessage) => {
          const v = pick(m);
          if (v === undefined) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(v);
        };
        child.on('message', onMessage);
        child.send(message);
      }),
    memory: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no memory answer`)), 5_000);
        const onMessage = (m: ChildMessage) => {
          if (!('memory' in m)) return;
          clearTimeout(timer);
          child.off('message', onMessage);
          resolve(m.memory);
        };
        child.on('message', onMessage);
        child.send({ cmd: 'memory' });
      }),
  };
  track(proc);
  proc.ready = await new Promise<Record<string, string>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready within ${READY_TIMEOUT_MS} ms; see ${stderrFile}`)), READY_TIMEOUT_MS);
    child.on('message', (m: ChildMessage) => {
      if ('ready' in m) {
        clearTimeout(timer);
        resolve(m.ready);
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      let tail = '';
      try {
        tail = readFileSync(stderrFile, 'utf8').slice(-2000);
      } catch {
        /* nothing written */
      }
      reject(new Error(`${name} exited (${code ?? sig}) before it was ready:\n${tail}`));
    });
  });
  return proc;
}

/** Resident set size of `pid` in bytes (/proc/PID/status VmRSS); undefined when gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;

/** user + system CPU time of `pids` in ms (/proc/PID/stat); gone PIDs count 0. */
export function cpuMs(pids: number[]): number {
  clockTicks ??= ((): number => {
    try {
      return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2_000 }).trim()) || 100;
    } catch {
      return 100;
    }
  })();
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    // utime and stime are fields 14 and 15; fields[0] is field 3 (state).
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / clockTicks;
}

/** PIDs whose parent is `ppid` (scans /proc). */
export function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === ppid) out.push(Number(entry));
  }
  return out;
}

/** Fields 3.. of /proc/PID/stat (after the parenthesized command, which may contain spaces). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
