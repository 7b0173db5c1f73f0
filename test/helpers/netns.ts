// Test helper: a throwaway Linux network namespace (needs root, iproute2 and
// iptables) in which the go command's default GOPROXY host resolves to
// 127.0.0.1 and port 443 is redirected, the way a build host is set up for
// interception. Owns creating, entering and removing namespaces named
// `gpr-<pid>-<n>`, and removing those a crashed earlier run left behind (its
// pid is gone). Must not start servers (the caller runs them inside with
// {@link Netns.spawn}).
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdir, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { requireTool } from './go.js';
import { join } from 'node:path';

/** Kept under its old name for the interception test: the same lookup as requireTool. */
export const requireSystemTool = requireTool;

/** Output of a finished command; see {@link Netns.exec}. */
export interface ExecResult {
  /** Exit code; -1 when killed (see `timedOut`). */
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Options of {@link Netns.exec} and {@link execTool}. */
export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long; default 30 000 ms. */
  timeoutMs?: number;
  /** Written to stdin, which is then closed (default: closed at once, like `</dev/null`). */
  input?: string;
}

/** A network namespace that exists until {@link Netns.remove}. */
export interface Netns {
  name: string;
  /** Runs `file args` inside the namespace; resolves also on a nonzero exit or a timeout. */
  exec(file: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts `file args` inside the namespace; `ip netns exec` execs, so the child's pid is the program's. */
  spawn(file: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** `iptables -t nat -A OUTPUT -p tcp --dport <from> -j REDIRECT --to-ports <to>` inside the namespace. */
  redirect(fromPort: number, toPort: number): Promise<void>;
  /** Kills what still runs inside, deletes the namespace and /etc/netns/<name>. Idempotent. */
  remove(): Promise<void>;
}

/** Options of {@link createNetns}. */
export interface NetnsOptions {
  /** Names resolved to 127.0.0.1 inside (the namespace's /etc/hosts); `localhost` is always added. */
  hosts: readonly string[];
}

const NAME_RE = /^gpr-(\d+)-\d+$/;
let counter = 0;

/** Runs a command; resolves with its exit code and output, rejects only when it cannot start. */
export function execTool(file: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr, timedOut: false });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (typeof e.code === 'number') return resolve({ code: e.code, stdout, stderr, timedOut: false });
        if (e.killed) return resolve({ code: -1, stdout, stderr: `${stderr}\n[execTool] ${file} ${args.join(' ')} killed after ${timeoutMs} ms\n`, timedOut: true });
        reject(new Error(`cannot run ${file} ${args.join(' ')}: ${err.message}`, { cause: err }));
      },
    );
    // A command that exits without reading its input closes the pipe: EPIPE is no error here.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** Like {@link execTool}, but throws with the command's stderr on a nonzero exit. */
async function mustExec(file: string, args: string[], opts?: ExecOptions): Promise<string> {
  const r = await execTool(file, args, opts);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs every process inside namespace `name`, deletes it and its /etc/netns directory. */
async function removeNamespace(ip: string, name: string): Promise<void> {
  const pids = await execTool(ip, ['netns', 'pids', name]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const del = await execTool(ip, ['netns', 'delete', name]);
  if (del.code !== 0 && !/No such file or directory/.test(del.stderr)) throw new Error(`ip netns delete ${name} exited ${del.code}: ${del.stderr.trim()}`);
  await rm(join('/etc/netns', name), { recursive: true, force: true });
  await rmdir('/etc/netns').catch(() => undefined); // only when empty: other namespaces may use it
}

/** Removes `gpr-<pid>-<n>` namespaces (and /etc/netns entries) whose creating process no longer runs. */
async function removeStale(ip: string): Promise<void> {
  const listed = (await mustExec(ip, ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');
  const etc = await readdir('/etc/netns').catch(() => [] as string[]);
  for (const name of new Set([...listed, ...etc])) {
    const owner = NAME_RE.exec(name)?.[1];
    if (owner !== undefined && !isAlive(Number(owner))) await removeNamespace(ip, name);
  }
}

/**
 * Creates namespace `gpr-<pid>-<n>` with loopback up and `opts.hosts` at
 * 127.0.0.1 in its /etc/hosts (`ip netns exec` bind-mounts /etc/netns/<name>/hosts
 * over /etc/hosts). The caller must call {@link Netns.remove}.
 */
export async function createNetns(opts: NetnsOptions): Promise<Netns> {
  const ip = requireSystemTool('ip');
  const iptables = requireSystemTool('iptables');
  if (process.getuid?.() !== 0) throw new Error('network namespaces need root: run the tests as root (CI does)');
  await removeStale(ip);
  // After a pid wrap a live namesake may hold the name: take the next one.
  let name = `gpr-${process.pid}-${++counter}`;
  for (let added = await execTool(ip, ['netns', 'add', name]); added.code !== 0; added = await execTool(ip, ['netns', 'add', name])) {
    if (!/File exists/.test(added.stderr) || counter > 100) throw new Error(`ip netns add ${name} exited ${added.code}: ${added.stderr.trim()}`);
    name = `gpr-${process.pid}-${++counter}`;
  }
  let removed: Promise<void> | undefined;
  const remove = (): Promise<void> => (removed ??= removeNamespace(ip, name));
  try {
    await mkdir(join('/etc/netns', name), { recursive: true });
    await writeFile(join('/etc/netns', name, 'hosts'), `127.0.0.1 localhost ${opts.hosts.join(' ')}\n::1 localhost\n`);
    await mustExec(ip, ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (err) {
    await remove();
    throw err;
  }
  const inside = (file: string, args: string[]) => ['netns', 'exec', name, file, ...args];
  return {
    name,
    exec: (file, args, execOpts) => execTool(ip, inside(file, args), execOpts),
    spawn: (file, args, spawnOpts = {}) => spawn(ip, inside(file, args), spawnOpts),
    redirect: async (fromPort, toPort) => {
      await mustExec(ip, inside(iptables, ['-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', String(fromPort), '-j', 'REDIRECT', '--to-ports', String(toPort)]));
    },
    remove,
  };
}
