// A Go toolchain through the proxy, as the go command fetches one: since Go
// 1.21 a `GOTOOLCHAIN` switch downloads the module
// golang.org/toolchain@v0.0.1-go<version>.<goos>-<goarch> through GOPROXY with
// modfetch.Download and verifies it with the checksum database, like any
// module. The go command on this machine (Debian 12: Go 1.19) has no toolchain
// switching, so the test drives that same download with `go mod download` of
// the toolchain module: a 24 MiB zip (real toolchains are 65-100 MiB), checked
// against a real checksum database through the proxy, stored on the disk tier,
// and served from it to a second, empty module cache.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { xorshiftBytes, type FixtureModule } from '../helpers/fixture-modules.js';
import { goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';
import { startTestProxy } from '../helpers/proxy.js';
import { startSumdb } from '../helpers/sumdb.js';
import { tempDir } from '../helpers/temp.js';

const GO_TIMEOUT_MS = 120_000;
const NAME = 'sum.fixture.test';
const TOOLCHAIN = 'golang.org/toolchain';
const VERSION = 'v0.0.1-go1.99.0.linux-amd64';
const ZIP_PATH = `/${TOOLCHAIN}/@v/${VERSION}.zip`;

function toolchainModule(): FixtureModule {
  return {
    path: TOOLCHAIN,
    versions: [
      {
        version: VERSION,
        time: '2026-11-01T00:00:00Z',
        goMod: `module ${TOOLCHAIN}\n`,
        files: {
          'bin/go': '#!/bin/sh\necho "go version go1.99.0 linux/amd64 (fixture)"\n',
          'VERSION': 'go1.99.0\ntime 2026-11-01T00:00:00Z\n',
          'pkg/tool/linux_amd64/compile.bin': xorshiftBytes(24 * 1024 * 1024, 0x51ed270b),
        },
      },
    ],
  };
}

async function backend(): Promise<FixtureBackend> {
  const b = await startFixtureBackend({ modules: [toolchainModule()] });
  onTestFinished(() => b.close());
  return b;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('a toolchain module is verified by the checksum database through the proxy, stored on disk, and served from it again', { timeout: 3 * GO_TIMEOUT_MS }, async () => {
  const origin = await backend();
  const b = await backend();
  const db = await startSumdb(NAME, origin.url);
  const p = await startTestProxy({ upstream: b.url, sumdb: { [NAME]: db.url }, cache: { dir: await tempDir('gpr-toolchain-') } });

  const download = async () => {
    const { env, work } = await goWorkspace(p.url);
    env.GOSUMDB = db.vkey;
    const out = ok(await runGo(['mod', 'download', '-json', `${TOOLCHAIN}@${VERSION}`], { cwd: work, env, timeoutMs: GO_TIMEOUT_MS }));
    const [r] = parseJsonStream(out.stdout);
    expect(r?.Error).toBeUndefined();
    return r!;
  };

  const first = await download();
  // The go command checked the zip's h1: against the database's signed record; the bytes are the backend's.
  expect(sha256(await readFile(first.Zip!))).toBe(sha256(b.zip(TOOLCHAIN, VERSION)));
  expect(first.Sum).toMatch(/^h1:/);
  const lines = p.accessLines();
  expect(lines.find((l) => l.path === ZIP_PATH)).toMatchObject({ status: 200, cache: 'MISS', bytes: b.zip(TOOLCHAIN, VERSION).length });
  expect(lines.find((l) => l.path === `/sumdb/${NAME}/lookup/${TOOLCHAIN}@${VERSION}`)).toMatchObject({ status: 200 });

  // A second build host's empty module cache: the zip comes from the proxy's disk tier.
  await new Promise<void>((resolve) => {
    const poll = () => (p.server.cache.fills === 0 ? resolve() : setTimeout(poll, 10));
    poll();
  });
  const before = p.accessLines().length;
  const second = await download();
  expect(second.Sum).toBe(first.Sum);
  expect(sha256(await readFile(second.Zip!))).toBe(sha256(b.zip(TOOLCHAIN, VERSION)));
  expect(p.accessLines().slice(before).find((l) => l.path === ZIP_PATH)).toMatchObject({ status: 200, cache: 'HIT' });
  expect(b.count(ZIP_PATH)).toBe(1);
});
