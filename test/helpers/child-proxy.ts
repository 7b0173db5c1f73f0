// Test helper: the compiled proxy (dist/src/main.js, `npm run build` first)
// as a real child process, `serve --config FILE`. Parses its pino lines from
// stdout, waits for lines (e.g. `listening`, to learn the ports), and kills
// it by PID when the test ends if it is still running. Owns the temp dir and
// the atomic config writes too. Must not: import from src/ (the process is
// tested from outside, through its sockets, signals and log), or pick free
// ports (the proxy listens on port 0 or on sockets handed to it).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { rename, writeFile } from 'node:fs/promises';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled CLI the tests run. */
export const MAIN_JS = join(ROOT, 'dist/src/main.js');

/** One parsed pino line of the proxy. */
export interface LogLine {
  level: number;
  time: number;
  pid: number;
  msg: string;
  [field: string]: unknown;
}

/** How a process ended: `code` 0..255 or `signal`; both null when the supervisor that relayed it died first. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One `listening` line: the role, `host:port` and, when socket-activated, the fd. */
export interface Listening {
  role: string;
  address: string;
  fd?: number;
}

/** A running (or finished) proxy process. */
export interface ChildProxy {
  readonly pid: number;
  /** Every stdout line that parsed as JSON, in order. */
  readonly lines: LogLine[];
  /** Lines whose `msg` is `msg`. */
  logged(msg: string): LogLine[];
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves once the process has exited and all its output was read. */
  readonly exited: Promise<Exit>;
  /** The exit, once known. */
  exit(): Exit | undefined;
  /**
   * Resolves with the first line at index `from` (default 0) or later that
   * matches; rejects when the process exits first or after `timeoutMs`
   * (default 20 000).
   */
  waitFor(predicate: (line: LogLine) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<LogLine>;
  /** Waits for `count` `listening` lines and returns them. */
  listening(count: number): Promise<Listening[]>;
  /** Sends `signal` to the process id. */
  signal(signal: NodeJS.Signals): void;
}

/** Where a proxy's output comes from: a direct child, or a process the fd supervisor relays. */
export interface ProcessOutput {
  readonly pid: number;
  onLine(listener: (line: string) => void): void;
  onStderr(listener: (text: string) => void): void;
  /** Resolves after the last line and stderr chunk were delivered. */
  readonly exited: Promise<Exit>;
}

export { tempDir } from './temp.js';

let writes = 0;

/**
 * Writes `content` (an object as JSON, or a string verbatim) to `path` the way
 * an operator's tooling should: a temp file in the same directory, then
 * rename(2), so a reload never reads a half-written file.
 */
export async function writeConfigAtomic(path: string, content: object | string): Promise<void> {
  const tmp = `${path}.${process.pid}.${++writes}.tmp`;
  await writeFile(tmp, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  await rename(tmp, path);
}

/**
 * The environment the proxy gets: no LISTEN_*, NOTIFY_SOCKET or GPR_* from
 * the test runner, and a fresh CACHE_DIRECTORY (a config without cache.dir
 * would otherwise share `cache/` in the repository with other tests).
 */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'gpr-cache-'));
  onTestFinished(() => rmSync(cacheDir, { recursive: true, force: true }));
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', CACHE_DIRECTORY: cacheDir };
  return { ...env, ...extra };
}

/** `node dist/src/main.js serve --config FILE`; throws when the build is missing. */
export function serveArgv(configPath: string): string[] {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` first`);
  return [process.execPath, MAIN_JS, 'serve', '--config', configPath];
}

/** The fd of a listening net.Server, to hand to a child (Node has no public getter; `_handle.fd` is libuv's). */
export function listeningFd(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('server is not listening on an fd of its own');
  return fd;
}

/** Options of {@link spawnProxy}. */
export interface SpawnOptions {
  configPath: string;
  /** Turns the proxy's argv into the one to run, e.g. behind systemd-socket-activate. Default: as is. */
  wrap?: (argv: string[]) => string[];
  /**
   * Listening sockets to put on fds 3, 4, ... of the child. They are handed
   * over: closed here right after the spawn, so only the child holds them
   * and this process never accepts on them.
   */
  passSockets?: Server[];
  env?: Record<string, string>;
}

/** Spawns the proxy as a direct child. */
export function spawnProxy(opts: SpawnOptions): ChildProxy {
  const argv = (opts.wrap ?? ((a) => a))(serveArgv(opts.configPath));
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('empty argv');
  const passed = opts.passSockets ?? [];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: opts.env ?? cleanEnv(),
    // libuv dup2()s each fd to its index in the child, which clears FD_CLOEXEC there.
    stdio: ['ignore', 'pipe', 'pipe', ...passed.map(listeningFd)],
  });
  for (const s of passed) s.close();
  const { stdout, stderr } = child;
  if (child.pid === undefined || !stdout || !stderr) throw new Error(`could not spawn ${command}`);
  const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const output: ProcessOutput = {
    pid: child.pid,
    onLine: (listener) => createInterface({ input: stdout }).on('line', listener),
    onStderr: (listener) => {
      stderr.setEncoding('utf8');
      stderr.on('data', listener);
    },
    exited,
  };
  return watchProxy(output);
}

/** Parses a process's output into a {@link ChildProxy}; SIGKILLs it when the test ends if still running. */
export function watchProxy(output: ProcessOutput): ChildProxy {
  const lines: LogLine[] = [];
  let stderr = '';
  let exit: Exit | undefined;
  const wakeups = new Set<() => void>();
  const wake = () => {
    for (const w of [...wakeups]) w();
  };
  output.onLine((text) => {
    if (!text.startsWith('{')) return;
    try {
      lines.push(JSON.parse(text) as LogLine);
    } catch {
      return; // not a pino line
    }
    wake();
  });
  output.onStderr((text) => {
    stderr += text;
  });
  const exited = output.exited.then((e) => {
    exit = e;
    wake();
    return e;
  });

  onTestFinished(async () => {
    if (exit) return;
    try {
      process.kill(output.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  });

  function waitFor(predicate: (line: LogLine) => boolean, opts: { from?: number; timeoutMs?: number } = {}): Promise<LogLine> {
    const timeoutMs = opts.timeoutMs ?? 20_000;
    let next = opts.from ?? 0;
    return new Promise((resolve, reject) => {
      const done = (err: Error | null, line?: LogLine) => {
        wakeups.delete(check);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(line!);
      };
      const check = () => {
        for (; next < lines.length; next++) {
          const line = lines[next]!;
          if (predicate(line)) return done(null, line);
        }
        if (exit) done(new Error(`proxy ${output.pid} exited (${JSON.stringify(exit)}) before the line appeared; stderr:\n${stderr}`));
      };
      const timer = setTimeout(() => done(new Error(`no matching log line from proxy ${output.pid} within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
      wakeups.add(check);
      check();
    });
  }

  return {
    pid: output.pid,
    lines,
    logged: (msg) => lines.filter((l) => l.msg === msg),
    stderr: () => stderr,
    exited,
    exit: () => exit,
    waitFor,
    async listening(count) {
      let seen = 0;
      await waitFor((l) => l.msg === 'listening' && ++seen === count);
      return lines.filter((l) => l.msg === 'listening').map((l) => ({ role: l.role as string, address: l.address as string, ...(l.fd === undefined ? {} : { fd: l.fd as number }) }));
    },
    signal(signal) {
      process.kill(output.pid, signal);
    },
  };
}

/** The port of a `host:port` address from a `listening` line. */
export function portOf(address: string): number {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no port in '${address}'`);
  return port;
}
