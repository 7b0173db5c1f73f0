// Test helper: runs the real go command in an isolated environment. Owns tool
// lookup (a missing tool fails the test loudly, never skips it), running go in
// the hermetic environment of go-env.ts, and parsing of `-json` output. Must not start servers.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { allModuleVersions } from './fixture-modules.js';
import { goEnv } from './go-env.js';

// Debian package of each tool, for the error message.
const APT_PACKAGE: Record<string, string> = {
  go: 'golang-go', ip: 'iproute2', iptables: 'iptables', nft: 'nftables', openssl: 'openssl', curl: 'curl',
  python3: 'python3', promtool: 'prometheus', 'systemd-socket-activate': 'systemd', 'systemd-notify': 'systemd', 'systemd-analyze': 'systemd',
};
// root's tools live in sbin, which a non-login PATH may lack.
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/**
 * Absolute path of executable `name` on PATH or in sbin. Throws (so the test
 * fails, never skips) when it is missing, saying how to install it.
 */
export function requireTool(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...SBIN]) {
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(`\`${name}\` not found on PATH or in sbin: run \`bash .ci/run\` or \`apt-get install -y ${APT_PACKAGE[name] ?? name}\``);
}

export { goEnv, type GoEnv, type GoEnvOptions } from './go-env.js';

/** Result of {@link runGo}. */
export interface GoResult {
  /** Exit code; -1 when the command was killed (see `timedOut`). */
  code: number;
  stdout: string;
  stderr: string;
  /** True when the command ran past its timeout and was killed. */
  timedOut: boolean;
}

/** Options of {@link runGo}. */
export interface RunGoOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Kill the command (SIGKILL) after this long; default 120 000 ms. */
  timeoutMs?: number;
}

/**
 * Runs `go <args>`. Resolves with the exit code and output, also for a nonzero
 * exit or a timeout; rejects only when go cannot be started at all.
 */
export function runGo(args: string[], opts: RunGoOptions): Promise<GoResult> {
  const go = requireTool('go');
  const timeoutMs = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    execFile(
      go,
      args,
      { cwd: opts.cwd, env: opts.env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr, timedOut: false });
        const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
        if (typeof e.code === 'number') return resolve({ code: e.code, stdout, stderr, timedOut: false });
        if (e.killed) {
          return resolve({ code: -1, stdout, stderr: `${stderr}\n[runGo] go ${args.join(' ')} killed after ${timeoutMs} ms\n`, timedOut: true });
        }
        reject(new Error(`runGo: cannot run go ${args.join(' ')} in ${opts.cwd}: ${err.message}`, { cause: err }));
      },
    );
  });
}

/** One object of `go mod download -json` output. */
export interface GoModDownload {
  Path: string;
  Version: string;
  Error?: string;
  Info?: string;
  GoMod?: string;
  Zip?: string;
  Dir?: string;
  Sum?: string;
  GoModSum?: string;
}

/**
 * Splits the concatenated JSON objects the go command prints for `-json`
 * (`go mod download -json`, `go list -m -json`) and parses each one.
 */
export function parseJsonStream<T = GoModDownload>(stdout: string): T[] {
  const out: T[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < stdout.length; i++) {
    const c = stdout[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}') {
      if (--depth === 0) out.push(JSON.parse(stdout.slice(start, i + 1)) as T);
      if (depth < 0) throw new Error(`parseJsonStream: unbalanced '}' at offset ${i}`);
    } else if (depth === 0 && c !== undefined && !/\s/.test(c)) {
      throw new Error(`parseJsonStream: unexpected ${JSON.stringify(c)} at offset ${i} outside an object`);
    }
  }
  if (depth !== 0) throw new Error('parseJsonStream: truncated object at end of input');
  return out;
}

/** A go environment plus a scratch main module `tmp` in `work`, both removed when the calling test ends. */
export async function goWorkspace(goproxy: string): Promise<{ env: NodeJS.ProcessEnv; dir: string; work: string }> {
  requireTool('go');
  const g = await goEnv({ goproxy });
  onTestFinished(() => g.cleanup());
  const work = join(g.dir, 'work');
  await mkdir(work);
  await writeFile(join(work, 'go.mod'), 'module tmp\n\ngo 1.19\n');
  return { env: g.env, dir: g.dir, work };
}

/** Asserts that the go command succeeded, showing its stderr otherwise. */
export function ok(r: GoResult): GoResult {
  expect(r.code, `go failed:\n${r.stderr}`).toBe(0);
  return r;
}

export { allModuleVersions };

/**
 * `go mod download -json` of every fixture version through `goproxy` in a
 * fresh workspace: `path@version` -> `"<zip h1:> <go.mod h1:>"`. Fails the
 * test on any module's error.
 */
export async function downloadFixtureSet(goproxy: string): Promise<Map<string, string>> {
  const { env, work } = await goWorkspace(goproxy);
  const out = ok(await runGo(['mod', 'download', '-json', ...allModuleVersions], { cwd: work, env }));
  const sums = new Map<string, string>();
  for (const r of parseJsonStream(out.stdout)) {
    expect(r.Error, `${r.Path}@${r.Version}`).toBeUndefined();
    sums.set(`${r.Path}@${r.Version}`, `${r.Sum} ${r.GoModSum}`);
  }
  return sums;
}
