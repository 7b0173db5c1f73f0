// Proves the shared fixtures are right before any proxy test relies on them:
// the real go command downloads, lists and builds every fixture module straight
// from the fixture backend (standard layout at / and under /api/go/repo), and
// the internal /v1/modules layout serves the same bytes. Owns no proxy code.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { allModuleVersions, CONSUMER_GET_ARGS, CONSUMER_OUTPUT, writeConsumerModule } from '../helpers/fixture-modules.js';
import { goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';

const GO_TEST_TIMEOUT_MS = 180_000;

async function backend(): Promise<FixtureBackend> {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  return b;
}


test(
  'the go command downloads, lists and builds every fixture module from the standard layout',
  async () => {
    const b = await backend();
    const { env, dir, work } = await goWorkspace(b.url);

    const download = ok(await runGo(['mod', 'download', '-json', ...allModuleVersions], { cwd: work, env }));
    const results = parseJsonStream(download.stdout);
    expect(results.map((r) => `${r.Path}@${r.Version}`).sort()).toEqual([...allModuleVersions].sort());
    for (const r of results) {
      expect(r.Error, `${r.Path}@${r.Version}`).toBeUndefined();
      expect(r.Sum, `${r.Path}@${r.Version}`).toMatch(/^h1:/);
      expect(r.GoModSum, `${r.Path}@${r.Version}`).toMatch(/^h1:/);
    }
    // The go command sends `!` as %21; the backend records it decoded.
    expect(b.count('/example.com/!burnt!sushi/toml/@v/v1.0.0.zip')).toBe(1);
    expect(b.count('/example.com/rc/mod/@v/v1.0.0-!r!c1.zip')).toBe(1);
    expect(b.count('/example.com/incompat/@v/v3.0.0+incompatible.zip')).toBe(1);

    const versions = ok(await runGo(['list', '-m', '-versions', 'example.com/lib'], { cwd: work, env }));
    expect(versions.stdout.trim()).toBe('example.com/lib v1.0.0 v1.1.0');

    const latest = ok(await runGo(['list', '-m', '-json', 'example.com/pseudo@latest'], { cwd: work, env }));
    expect(parseJsonStream(latest.stdout)).toMatchObject([{ Path: 'example.com/pseudo', Version: 'v0.0.0-20240101000000-abcdefabcdef' }]);

    const consumer = join(dir, 'consumer');
    await writeConsumerModule(consumer);
    ok(await runGo(['get', ...CONSUMER_GET_ARGS], { cwd: consumer, env }));
    ok(await runGo(['build', '-o', 'consumer', '.'], { cwd: consumer, env }));
    const { stdout } = await promisify(execFile)(join(consumer, 'consumer'));
    expect(stdout.trim()).toBe(CONSUMER_OUTPUT);
  },
  GO_TEST_TIMEOUT_MS,
);

test(
  'the go command downloads from the standard layout under /api/go/repo',
  async () => {
    const b = await backend();
    const { env, work } = await goWorkspace(`${b.url}/api/go/repo`);
    const wanted = ['example.com/BurntSushi/toml@v1.0.0', 'example.com/rc/mod@v1.0.0-RC1', 'example.com/incompat@v3.0.0+incompatible', 'example.com/app@v1.2.0'];

    const download = ok(await runGo(['mod', 'download', '-json', ...wanted], { cwd: work, env }));
    const results = parseJsonStream(download.stdout);
    expect(results).toHaveLength(wanted.length);
    for (const r of results) {
      expect(r.Error, `${r.Path}@${r.Version}`).toBeUndefined();
      expect(r.Sum).toMatch(/^h1:/);
    }
    expect(b.count('/api/go/repo/example.com/!burnt!sushi/toml/@v/v1.0.0.zip')).toBe(1);
    expect(b.requests.every((r) => r.path.startsWith('/api/go/repo/'))).toBe(true);
    expect(b.requests.every((r) => r.method === 'GET')).toBe(true);
  },
  GO_TEST_TIMEOUT_MS,
);

test('the internal layout serves the same bytes as the standard layout', async () => {
  const b = await backend();
  const get = async (path: string): Promise<{ status: number; headers: Headers; body: Buffer }> => {
    const res = await fetch(b.url + path);
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  };

  const expected = b.zip('example.com/BurntSushi/toml', 'v1.0.0');
  const standard = await get('/example.com/%21burnt%21sushi/toml/@v/v1.0.0.zip');
  const prefixed = await get('/api/go/repo/example.com/%21burnt%21sushi/toml/@v/v1.0.0.zip');
  const internal = await get('/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/zip');
  for (const r of [standard, prefixed, internal]) {
    expect(r.status).toBe(200);
    expect(r.body.equals(expected)).toBe(true);
    expect(r.headers.get('content-type')).toBe('application/zip');
    expect(r.headers.get('content-length')).toBe(String(expected.length));
    expect(r.headers.get('etag')).toMatch(/^"sha256-[0-9a-f]{16}"$/);
  }
  expect(b.count('/example.com/!burnt!sushi/toml/@v/v1.0.0.zip')).toBe(1);
  expect(b.count('/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/zip')).toBe(1);

  const bigZip = await get('/v1/modules/example.com/big/versions/v1.0.0/zip');
  expect(bigZip.body.length).toBeGreaterThan(6 * 1024 * 1024);
  expect(bigZip.body.equals(b.zip('example.com/big', 'v1.0.0'))).toBe(true);

  const info = await get('/v1/modules/example.com/rc/mod/versions/v1.0.0-!r!c1/info');
  expect(info.headers.get('content-type')).toBe('application/json');
  expect(info.headers.get('etag')).toBeNull();
  expect(JSON.parse(info.body.toString())).toEqual({ Version: 'v1.0.0-RC1', Time: '2023-02-01T08:30:00Z' });
  expect((await get('/example.com/rc/mod/@v/v1.0.0-%21r%21c1.info')).body.equals(info.body)).toBe(true);

  const mod = await get('/v1/modules/example.com/incompat/versions/v3.0.0+incompatible/mod');
  expect(mod.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(mod.body.toString()).toBe('module example.com/incompat\n');

  const list = await get('/v1/modules/example.com/lib/list');
  expect(list.body.toString()).toBe('v1.0.0\nv1.1.0\n');
  expect((await get('/example.com/lib/@v/list')).body.equals(list.body)).toBe(true);
  const emptyList = await get('/v1/modules/example.com/pseudo/list');
  expect([emptyList.status, emptyList.body.length, emptyList.headers.get('content-length')]).toEqual([200, 0, '0']);
  const latest = await get('/v1/modules/example.com/pseudo/latest');
  expect(JSON.parse(latest.body.toString())).toMatchObject({ Version: 'v0.0.0-20240101000000-abcdefabcdef' });
  expect((await get('/example.com/pseudo/@latest')).body.equals(latest.body)).toBe(true);

  for (const path of [
    '/example.com/lib/@latest',
    '/v1/modules/example.com/lib/latest',
    '/example.com/nope/@v/list',
    '/v1/modules/example.com/lib/versions/v9.9.9/zip',
    '/example.com/BurntSushi/toml/@v/v1.0.0.zip', // upper case is never valid on the wire
    '/v1/modules/example.com/lib',
  ]) {
    const r = await get(path);
    expect(r.status, path).toBe(404);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(r.body.toString()).toMatch(/^not found: /);
  }
});

test('fault injection: 500, reset, delay, and reset() of the request log', async () => {
  const b = await backend();
  const path = '/example.com/base/@v/v1.0.0.mod';

  b.setFailure('500');
  expect((await fetch(b.url + path)).status).toBe(500);
  b.setFailure('reset');
  await expect(fetch(b.url + path)).rejects.toThrow();
  b.setFailure('none');
  expect(b.count(path)).toBe(2);

  b.reset();
  expect(b.requests).toEqual([]);
  b.setDelayMs(100);
  const started = performance.now();
  const res = await fetch(b.url + path);
  expect(await res.text()).toBe('module example.com/base\n\ngo 1.16\n');
  expect(performance.now() - started).toBeGreaterThanOrEqual(90);
  expect(b.requests).toMatchObject([{ method: 'GET', path }]);
});
