// Test helper for test/system/: a Debian 12 root (build-root.sh) booted with
// `systemd-nspawn -b` so systemd 252 is PID 1, and commands run inside it.
// The host runs no systemd (its PID 1 is not systemd), so the container is
// neither registered with machined (--register=no) nor put in a scope of its
// own (--keep-unit: it stays in our cgroup), and `systemd-run -M` /
// `machinectl` cannot reach it: commands enter the namespaces of the
// container's PID 1 with nsenter instead (its pid seen from here is the
// nspawn child whose NSpid ends in 1). --private-network: loopback only
// inside. --volatile=overlay: the cached root stays read-only under a tmpfs
// overlay, so every run starts from the same clean root and leaves it so.
// Owns: the nspawn process and the container's PID 1, which it ends, by pid,
// when the suite ends (also when the runner exits early). Must not: touch
// any other process or machine, or skip when a tool is missing.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** What a command inside printed and how it ended. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Container {
  /** The machine name (also the hostname inside). */
  readonly machine: string;
  /** The container's PID 1, as seen from the host. */
  readonly leader: number;
  /** Runs `bash -c script` inside, as root; resolves with its exit code (never rejects on a non-zero one). */
  run(script: string, opts?: { timeoutMs?: number; input?: string }): Promise<Run>;
  /** Like {@link run}, but rejects (with stdout and stderr) unless it exits 0; resolves with stdout. */
  sh(script: string, opts?: { timeoutMs?: number }): Promise<string>;
  /** Starts `bash -c script` inside and returns the process (stdin, stdout and stderr piped). */
  spawn(script: string): ChildProcess;
  /** What systemd printed on the container's console so far. */
  console(): string;
  /** Powers the container off (SIGTERM to nspawn), SIGKILLs it after `timeoutMs`; idempotent. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface BootOptions {
  root: string;
  machine: string;
  /** [host path, path inside], mounted read-only. */
  bindReadOnly: Array<[string, string]>;
  /** How long to wait for the boot to finish (`is-system-running --wait`). Default 60 000 ms. */
  bootTimeoutMs?: number;
}

/** Tools the system test needs on the host (command -> Debian package, as in scripts/ensure-tools.sh). */
export const HOST_TOOLS = { 'systemd-nspawn': 'systemd-container', debootstrap: 'debootstrap', nsenter: 'util-linux' } as const;

/** Throws, naming the package, unless every host tool is there and we are root. */
export function requireHostTools(): void {
  const missing = Object.entries(HOST_TOOLS).filter(([cmd]) => !['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((dir) => existsSync(join(dir, cmd))));
  if (missing.length) throw new Error(`test/system needs ${missing.map(([c, p]) => `${c} (package ${p})`).join(', ')}: run scripts/ensure-tools.sh as root`);
  if (process.getuid?.() !== 0) throw new Error('test/system needs root (debootstrap, systemd-nspawn, nsenter)');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The child of `parent` that is PID 1 of its own pid namespace, or undefined. */
function findLeader(parent: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const ppid = /^PPid:\s+(\d+)$/m.exec(status)?.[1];
      const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (Number(ppid) === parent && nspid && nspid.length > 1 && nspid[nspid.length - 1] === '1') return Number(entry);
    } catch {
      // the process went away while we looked
    }
  }
  return undefined;
}

/** Processes to SIGKILL if the runner exits before the suite's teardown ran. */
const leftovers = new Set<number>();
process.once('exit', () => {
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

/** Boots the container and resolves once systemd inside reports the boot finished. */
export async function bootContainer(opts: BootOptions): Promise<Container> {
  const args = [
    '--quiet',
    `--directory=${opts.root}`,
    '--volatile=overlay',
    '--boot',
    '--register=no',
    '--keep-unit',
    '--private-network',
    `--machine=${opts.machine}`,
    '--console=pipe',
    ...opts.bindReadOnly.map(([from, to]) => `--bind-ro=${from}:${to}`),
  ];
  const nspawn = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const nspawnPid = nspawn.pid;
  if (nspawnPid === undefined) throw new Error('could not start systemd-nspawn');
  leftovers.add(nspawnPid);
  let consoleText = '';
  nspawn.stdout.setEncoding('utf8').on('data', (s: string) => (consoleText += s));
  nspawn.stderr.setEncoding('utf8').on('data', (s: string) => (consoleText += s));
  let exited = false;
  const exitedP = new Promise<void>((resolve) =>
    nspawn.once('close', () => {
      exited = true;
      resolve();
    }),
  );

  let leader: number | undefined;
  async function stop(timeoutMs = 20_000): Promise<void> {
    if (!exited) {
      // nspawn turns SIGTERM into a clean poweroff of the container.
      nspawn.kill('SIGTERM');
      await Promise.race([exitedP, sleep(timeoutMs)]);
    }
    if (!exited) {
      // Killing PID 1 of the container's pid namespace kills all of it.
      if (leader !== undefined && findLeader(nspawnPid as number) === leader) process.kill(leader, 'SIGKILL');
      nspawn.kill('SIGKILL');
      await exitedP;
    }
    leftovers.delete(nspawnPid as number);
    if (leader !== undefined) leftovers.delete(leader);
    // nspawn's mount propagation directory for this machine name (ours alone).
    rmSync(`/run/systemd/nspawn/propagate/${opts.machine}`, { recursive: true, force: true });
  }

  const deadline = Date.now() + (opts.bootTimeoutMs ?? 60_000);
  while (leader === undefined && !exited && Date.now() < deadline) {
    await sleep(50);
    leader = findLeader(nspawnPid);
  }
  if (leader === undefined) {
    await stop(5000);
    throw new Error(`systemd-nspawn did not start a container${exited ? ` (it exited: ${nspawn.exitCode})` : ''}:\n${consoleText}`);
  }
  leftovers.add(leader);
  const pid1 = leader;

  const nsenterArgs = (script: string) => ['--target', String(pid1), '--all', '--root', '--wd', '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'SYSTEMD_PAGER=', '/bin/bash', '-c', script];

  function run(script: string, o: { timeoutMs?: number; input?: string } = {}): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile('nsenter', nsenterArgs(script), { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 124) : 0;
        resolve({ code, stdout, stderr: err && code === 124 ? `${stderr}\n(timed out or killed: ${err.message})` : stderr });
      });
      if (o.input !== undefined) child.stdin?.end(o.input);
      else child.stdin?.end();
    });
  }

  const container: Container = {
    machine: opts.machine,
    leader: pid1,
    run,
    async sh(script, o) {
      const r = await run(script, o);
      if (r.code !== 0) throw new Error(`inside ${opts.machine}, exit ${r.code}: ${script}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      return r.stdout;
    },
    spawn(script) {
      return spawn('nsenter', nsenterArgs(script), { stdio: ['pipe', 'pipe', 'pipe'] });
    },
    console: () => consoleText,
    stop,
  };

  // The leader is nspawn's inner child until it has set up the root and
  // exec'd systemd: entering it earlier would land in the wrong root.
  while (!exited && Date.now() < deadline && readFileSync(`/proc/${pid1}/comm`, 'utf8').trim() !== 'systemd') await sleep(50);
  // "running", or "degraded" when a unit failed (then named in the error);
  // "offline" or nothing ("Failed to connect to bus") while the manager
  // does not answer yet.
  let boot: Run;
  const early = (r: Run) => ['offline', ''].includes(r.stdout.trim());
  do {
    boot = await run('systemctl is-system-running --wait', { timeoutMs: Math.max(1000, deadline - Date.now()) });
    if (early(boot)) await sleep(100);
  } while (early(boot) && !exited && Date.now() < deadline);
  const state = boot.stdout.trim();
  if (state !== 'running') {
    const failed = await run('systemctl --failed --no-legend --plain');
    await stop(5000);
    throw new Error(`the container did not boot cleanly: is-system-running says "${state}" (${boot.stderr.trim()}); failed units:\n${failed.stdout}\nconsole:\n${consoleText}`);
  }
  return container;
}

/** The root directory build-root.sh prints (building it first if needed; minutes, once), and whether it was built now. */
export function buildRoot(script: string, timeoutMs: number): Promise<{ root: string; log: string }> {
  return new Promise((resolve, reject) => {
    execFile('bash', [script], { timeout: timeoutMs, killSignal: 'SIGTERM' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
      else resolve({ root: stdout.trim(), log: stderr });
    });
  });
}
