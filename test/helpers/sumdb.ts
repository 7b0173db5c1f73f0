// Test helper: a real Go checksum database. Builds test/fixtures/sumdb-server
// (golang.org/x/mod's sumdb.NewServer over sumdb.NewTestServer) offline with
// GO111MODULE=off from the x/mod and x/crypto copies vendored in the Go
// toolchain, linked into a temporary GOPATH; starts it on 127.0.0.1:0 with a
// fresh note key pair. Must not know about the proxy.
import { execFile, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';
import { requireTool } from './go.js';

const run = promisify(execFile);
const SOURCE = new URL('../fixtures/sumdb-server/main.go', import.meta.url).pathname;

let built: Promise<string> | undefined;

/** Builds the server once per test process; resolves with the binary's path. */
export function buildSumdbServer(): Promise<string> {
  built ??= (async () => {
    const go = requireTool('go');
    const goroot = (await run(go, ['env', 'GOROOT'])).stdout.trim();
    const vendor = join(goroot, 'src/cmd/vendor/golang.org/x');
    for (const pkg of ['mod/sumdb/server.go', 'mod/sumdb/test.go', 'mod/sumdb/note/note.go', 'mod/sumdb/dirhash/hash.go', 'crypto/ed25519']) {
      if (!existsSync(join(vendor, pkg))) throw new Error(`the Go toolchain at ${goroot} has no vendored golang.org/x/${pkg}: the checksum database fixture cannot be built`);
    }
    const gopath = await mkdtemp(join(tmpdir(), 'gpr-sumdb-gopath-'));
    process.once('exit', () => rmSync(gopath, { recursive: true, force: true }));
    await mkdir(join(gopath, 'src/golang.org/x'), { recursive: true });
    await mkdir(join(gopath, 'src/sumdbserver'));
    await symlink(join(vendor, 'mod'), join(gopath, 'src/golang.org/x/mod'));
    await symlink(join(vendor, 'crypto'), join(gopath, 'src/golang.org/x/crypto'));
    await copyFile(SOURCE, join(gopath, 'src/sumdbserver/main.go'));
    const bin = join(gopath, 'sumdb-server');
    const env = { ...process.env, GO111MODULE: 'off', GOPATH: gopath, GOFLAGS: '', GOPROXY: 'off', GOCACHE: join(gopath, 'cache'), CGO_ENABLED: '0' };
    await run(go, ['build', '-o', bin, '.'], { cwd: join(gopath, 'src/sumdbserver'), env });
    return bin;
  })();
  return built;
}

export interface SumdbServer {
  /** http://127.0.0.1:PORT (serves /latest, /lookup/..., /tile/...). */
  url: string;
  /** The verifier key, "name+hash+key": GOSUMDB takes it as is. */
  vkey: string;
}

/**
 * Starts a checksum database named `name` that hashes modules from the module
 * proxy at `originUrl` (the truth: a clean fixture backend). Stopped when the
 * calling test ends.
 */
export async function startSumdb(name: string, originUrl: string): Promise<SumdbServer> {
  const bin = await buildSumdbServer();
  const child = spawn(bin, [name, originUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  onTestFinished(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`sumdb-server exited ${code}: ${stderr}`)));
  });
  return JSON.parse(line) as SumdbServer;
}
