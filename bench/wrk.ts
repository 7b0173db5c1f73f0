/**
 * @module bench/wrk
 * Runs wrk (C, epoll, one thread per core) for the scenarios whose bodies
 * are large: autocannon decodes every body into a JS string and tops out
 * near 65-70 MB/s on a 1 MiB body, far below what either server sends.
 * Parses wrk's text report into the numbers run.ts tabulates.
 * Must not: send traffic anywhere but the loopback URL it is given.
 */
import { spawn } from 'node:child_process';

export const WRK_BIN = '/usr/bin/wrk';

export interface WrkOptions {
  url: string;
  connections: number;
  threads: number;
  durationS: number;
  timeoutS: number;
  headers?: Record<string, string>;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  bytes: number;
  latencyMs: { p50: number; p99: number; mean: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  /** CPU time of the wrk process itself, ms (from /proc while it ran). */
  clientCpuMs: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
const UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function ms(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  return m ? Number(m[1]) * (UNIT_MS[m[2] as string] ?? NaN) : NaN;
}

/** Parses wrk 4's report (run with --latency). Exported for a unit check by hand. */
export function parseWrk(out: string): Omit<WrkResult, 'clientCpuMs'> {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(out);
  if (!total) throw new Error(`wrk: no summary line in its output:\n${out}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const mean = /Latency\s+([\d.]+(?:us|ms|s|m))/.exec(out);
  return {
    requests: Number(total[1]),
    durationS: (Number(total[2]) * (UNIT_MS[total[3] as string] ?? NaN)) / 1000,
    bytes: Number(total[4]) * (UNIT_BYTES[total[5] as string] ?? NaN),
    latencyMs: { p50: ms(/^\s+50%\s+(\S+)/m.exec(out)?.[1]), p99: ms(/^\s+99%\s+(\S+)/m.exec(out)?.[1]), mean: ms(mean?.[1]) },
    errors: socket ? Number(socket[1]) + Number(socket[2]) + Number(socket[3]) + Number(socket[4]) : 0,
    timeouts: socket ? Number(socket[4]) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** Runs wrk to completion (bounded by its -d) and parses the report. */
export function runWrk(opts: WrkOptions, cpuMsOf: (pid: number) => number): Promise<WrkResult> {
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.durationS}s`, '--timeout', `${opts.timeoutS}s`, '--latency'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(opts.url);
  const child = spawn(WRK_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let cpu = 0;
  const pid = child.pid;
  // /proc/PID/stat is gone once wrk is reaped: sample it while it runs.
  const sampler = setInterval(() => {
    if (pid !== undefined) cpu = Math.max(cpu, cpuMsOf(pid));
  }, 250);
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const killer = setTimeout(() => child.kill('SIGKILL'), (opts.durationS + opts.timeoutS + 10) * 1000);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearInterval(sampler);
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${err}${out}`));
      try {
        resolve({ ...parseWrk(out), clientCpuMs: cpu });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}
