/**
 * @module bench/go
 * `go-mod-download`: the real go command (`go mod download -json` of every
 * fixture module version) with a fresh module cache, through a server, timed
 * from spawn to exit, in the tests' hermetic environment
 * (test/helpers/go-env.ts: fresh HOME, GOPATH and caches, GOSUMDB=off).
 * Must not: reach anything but the loopback GOPROXY it is given.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { allModuleVersions } from '../test/helpers/fixture-modules.js';
import { goEnv } from '../test/helpers/go-env.js';

export const GO_BIN = '/usr/bin/go';
const GO_TIMEOUT_MS = 180_000;

export interface GoRun {
  wallMs: number;
  /** Modules downloaded without an Error field. */
  modules: number;
  ok: boolean;
  stderr: string;
}

/**
 * One `go mod download` through `goproxy` with a new module cache.
 * @param caFile - SSL_CERT_FILE for an https GOPROXY.
 */
export async function goModDownload(goproxy: string, caFile?: string): Promise<GoRun> {
  const dir = await mkdtemp(join(os.tmpdir(), 'gpr-bench-go-'));
  try {
    const { env } = await goEnv({ goproxy, home: dir });
    // The CA to trust is exactly SSL_CERT_FILE's.
    delete env.SSL_CERT_DIR;
    if (caFile) env.SSL_CERT_FILE = caFile;
    await mkdir(join(dir, 'work'), { recursive: true });
    await writeFile(join(dir, 'work', 'go.mod'), 'module tmp\n\ngo 1.19\n');
    const wanted = allModuleVersions;
    const started = performance.now();
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(GO_BIN, ['mod', 'download', '-json', ...wanted], { cwd: join(dir, 'work'), env, timeout: GO_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, out, errOut) => {
        const c = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        resolve({ code: c, stdout: out, stderr: errOut });
      });
    });
    const wallMs = performance.now() - started;
    const errors = (stdout.match(/"Error":/g) ?? []).length;
    const modules = (stdout.match(/"Path":/g) ?? []).length - errors;
    return { wallMs, modules, ok: code === 0 && modules === wanted.length, stderr: stderr.slice(-2000) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
