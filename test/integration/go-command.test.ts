// Acceptance of the core: the real go command (fresh module cache, GOPROXY at
// the proxy, GOSUMDB=off) downloads, lists and builds the fixture modules
// through the proxy with the `internal` rewrite, with the same h1: hashes as a
// direct run against the backend; a second cold run is served from the cache;
// with the backend down, the go command falls through or reports the message.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { CONSUMER_GET_ARGS, CONSUMER_OUTPUT, writeConsumerModule } from '../helpers/fixture-modules.js';
import { allModuleVersions, downloadFixtureSet, goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';
import { startTestProxy } from '../helpers/proxy.js';

const GO_TIMEOUT_MS = 180_000;

async function backend(): Promise<FixtureBackend> {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  return b;
}

const IMMUTABLE = /\/versions\/[^/]+\/(info|mod|zip)$/;

test(
  'the go command through the proxy: same hashes as direct, exact rewrites, then a cold run from cache',
  async () => {
    const b = await backend();
    const direct = await downloadFixtureSet(b.url);
    expect(direct.size).toBe(allModuleVersions.length);
    b.reset();

    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const proxied = await downloadFixtureSet(p.url);
    expect(proxied).toEqual(direct);

    // Every backend request is a rewrite of what the client asked, and carries the client's path.
    const access = p.accessLines();
    expect(b.requests.length).toBeGreaterThan(0);
    const upstreamPaths = new Set(access.map((l) => l.upstreamPath));
    for (const r of b.requests) {
      expect(r.path).toMatch(/^\/v1\/modules\//);
      expect(upstreamPaths.has(r.path), r.path).toBe(true);
      const line = access.find((l) => l.upstreamPath === r.path);
      expect(r.headers['x-go-proxy-original-path']).toBe(line?.path);
    }
    expect(b.count('/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/zip')).toBe(1);
    expect(b.count('/v1/modules/example.com/rc/mod/versions/v1.0.0-!r!c1/zip')).toBe(1);
    expect(b.count('/v1/modules/example.com/incompat/versions/v3.0.0+incompatible/mod')).toBe(1);

    // Second run, fresh GOMODCACHE: immutable objects come from the cache.
    const immutableBefore = b.requests.filter((r) => IMMUTABLE.test(r.path)).length;
    const linesBefore = p.accessLines().length;
    expect(await downloadFixtureSet(p.url)).toEqual(direct);
    expect(b.requests.filter((r) => IMMUTABLE.test(r.path)).length).toBe(immutableBefore);
    const second = p.accessLines().slice(linesBefore);
    const secondImmutable = second.filter((l) => IMMUTABLE.test(String(l.upstreamPath)));
    expect(secondImmutable.length).toBeGreaterThanOrEqual(allModuleVersions.length * 2);
    expect(secondImmutable.every((l) => l.cache === 'HIT')).toBe(true);
  },
  GO_TIMEOUT_MS,
);

test(
  'go list -m -versions, @latest of a pseudo-version, go get and go build through the proxy',
  async () => {
    const b = await backend();
    const p = await startTestProxy({ upstream: b.url, rewrite: 'internal' });
    const { env, dir, work } = await goWorkspace(p.url);

    const versions = ok(await runGo(['list', '-m', '-versions', 'example.com/lib'], { cwd: work, env }));
    expect(versions.stdout.trim()).toBe('example.com/lib v1.0.0 v1.1.0');
    const latest = ok(await runGo(['list', '-m', '-json', 'example.com/pseudo@latest'], { cwd: work, env }));
    expect(parseJsonStream(latest.stdout)).toMatchObject([{ Path: 'example.com/pseudo', Version: 'v0.0.0-20240101000000-abcdefabcdef' }]);
    expect(b.count('/v1/modules/example.com/pseudo/list')).toBe(1);
    expect(b.count('/v1/modules/example.com/pseudo/latest')).toBe(1);

    const consumer = join(dir, 'consumer');
    await writeConsumerModule(consumer);
    ok(await runGo(['get', ...CONSUMER_GET_ARGS], { cwd: consumer, env }));
    ok(await runGo(['build', '-o', 'consumer', '.'], { cwd: consumer, env }));
    const { stdout } = await promisify(execFile)(join(consumer, 'consumer'));
    expect(stdout.trim()).toBe(CONSUMER_OUTPUT);
    // Parent-path probes got the backend's 404 through (the go command needs it to go on).
    expect(p.accessLines().some((l) => l.status === 404 && l.err === null)).toBe(true);
  },
  GO_TIMEOUT_MS,
);

test(
  'backend down: notfound makes the go command fall through to the next GOPROXY entry; error fails with the message',
  async () => {
    const b = await backend();
    const fallback = await backend();
    const dead = await startFixtureBackend();
    const deadUrl = dead.url;
    await dead.close();

    const notfound = await startTestProxy({ upstream: deadUrl, rewrite: 'internal' });
    const { env, work } = await goWorkspace(`${notfound.url},${fallback.url}`);
    const out = ok(await runGo(['mod', 'download', '-json', 'example.com/lib@v1.1.0'], { cwd: work, env }));
    expect(parseJsonStream(out.stdout)[0]?.Sum).toMatch(/^h1:/);
    expect(fallback.count('/example.com/lib/@v/v1.1.0.zip')).toBe(1);
    expect(notfound.accessLines().every((l) => l.status === 404 && l.err === 'GPR_ERR_UPSTREAM_UNREACHABLE')).toBe(true);

    const failing = await startTestProxy({ upstream: deadUrl, rewrite: 'internal', onUpstreamFailure: 'error' });
    const w2 = await goWorkspace(`${failing.url},${fallback.url}`);
    const failed = await runGo(['mod', 'download', 'example.com/base@v1.0.0'], { cwd: w2.work, env: w2.env });
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/502 Bad Gateway/);
    expect(failed.stderr).toMatch(/go-proxy-rewriter: backend .* is unreachable/);
    expect(fallback.count('/example.com/base/@v/v1.0.0.zip')).toBe(0);
    expect(b.requests).toHaveLength(0);
  },
  GO_TIMEOUT_MS,
);
