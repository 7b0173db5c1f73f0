// The upstream chain with GOPROXY semantics against two or three real fixture
// backends: after "," only a 404/410 goes on to the next entry (a 500 does
// not); after "|" a 500, a refused connection and a timeout all do. Proven
// with HTTP requests and with the real go command. Also passive health
// (an entry failing repeatedly is skipped, /readyz 503 when all cool down)
// and per-entry auth headers that never reach a log line.
import { createServer } from 'node:net';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend, type FixtureBackendOptions } from '../helpers/fixture-backend.js';
import { fixtureModules } from '../helpers/fixture-modules.js';
import { goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy } from '../helpers/proxy.js';

const GO_TIMEOUT_MS = 120_000;
const LIB = fixtureModules().find((m) => m.path === 'example.com/lib');
const V = LIB?.versions[0]?.version as string;
const INFO = `/example.com/lib/@v/${V}.info`;
const ZIP = `/example.com/lib/@v/${V}.zip`;

async function backend(opts: FixtureBackendOptions = {}): Promise<FixtureBackend> {
  const b = await startFixtureBackend(opts);
  onTestFinished(() => b.close());
  return b;
}

/** A loopback URL whose port refuses connections: a listener opened on port 0 and closed again. */
async function refusedUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}`;
}

test('"," goes on after a 404 and answers from the second backend; the log names the entry that answered', async () => {
  const empty = await backend({ modules: [] });
  const full = await backend();
  const p = await startTestProxy({ upstream: `${empty.url},${full.url}` });
  const r = await get(p.url + INFO);
  expect(r.status).toBe(200);
  expect(r.body.toString()).toBe((await get(full.url + INFO)).body.toString());
  expect(empty.count(INFO)).toBe(1);
  expect(full.count(INFO)).toBe(2);
  const line = p.accessLines().find((l) => l.path === INFO);
  expect(line).toMatchObject({ status: 200, cache: 'MISS', upstreamPath: full.url + INFO });
});

test('"," does not go on after a 500: the client gets the failure and the second backend is never asked', async () => {
  const failing = await backend();
  failing.setFailure('500');
  const full = await backend();
  const p = await startTestProxy({ upstream: `${failing.url},${full.url}`, onUpstreamFailure: 'error' });
  const r = await get(p.url + INFO);
  expect(r.status).toBe(502);
  expect(r.body.toString()).toContain('answered 500');
  expect(failing.count(INFO)).toBe(1);
  expect(full.count(INFO)).toBe(0);
});

test.each(['500', 'refused', 'timeout'] as const)('"|" goes on after %s', async (mode) => {
  const full = await backend();
  let first: Record<string, unknown>;
  let firstBackend: FixtureBackend | undefined;
  if (mode === 'refused') first = { url: await refusedUrl(), fallThrough: 'error' };
  else {
    firstBackend = await backend();
    if (mode === '500') firstBackend.setFailure('500');
    else firstBackend.setDelayMs(3_000);
    first = { url: firstBackend.url, fallThrough: 'error', timeouts: { responseMs: 300 } };
  }
  const p = await startTestProxy({ upstream: [first, { url: full.url }], onUpstreamFailure: 'error' });
  const started = performance.now();
  const r = await get(p.url + ZIP);
  expect(r.status).toBe(200);
  expect(r.body.equals(full.zip('example.com/lib', V))).toBe(true);
  expect(performance.now() - started).toBeLessThan(2_500);
  if (firstBackend) expect(firstBackend.count(ZIP)).toBe(1);
  expect(full.count(ZIP)).toBe(1);
});

test('the go command: "," after 404 and "|" after 500 succeed; "," after 500 fails without asking the second', { timeout: 3 * GO_TIMEOUT_MS }, async () => {
  const empty = await backend({ modules: [] });
  const failing = await backend();
  failing.setFailure('500');
  const full = await backend();
  const mods = LIB?.versions.map((v) => `example.com/lib@${v.version}`) ?? [];

  for (const upstream of [`${empty.url},${full.url}`, `${failing.url}|${full.url}`]) {
    full.reset();
    const p = await startTestProxy({ upstream, onUpstreamFailure: 'error' });
    const { env, work } = await goWorkspace(p.url);
    const out = ok(await runGo(['mod', 'download', '-json', ...mods], { cwd: work, env, timeoutMs: GO_TIMEOUT_MS }));
    const results = parseJsonStream(out.stdout);
    expect(results.map((m) => `${m.Path}@${m.Version}`).sort()).toEqual([...mods].sort());
    for (const m of results) expect(m.Error, upstream).toBeUndefined();
    expect(full.count(ZIP), upstream).toBe(1);
  }

  full.reset();
  const p = await startTestProxy({ upstream: `${failing.url},${full.url}`, onUpstreamFailure: 'error' });
  const { env, work } = await goWorkspace(p.url);
  const r = await runGo(['mod', 'download', '-json', `example.com/lib@${V}`], { cwd: work, env, timeoutMs: GO_TIMEOUT_MS });
  expect(r.code).not.toBe(0);
  expect(r.stdout + r.stderr).toMatch(/502 Bad Gateway/);
  expect(full.requests).toHaveLength(0);
});

test('passive health: an entry failing repeatedly is skipped, shows in metrics and logs, and /readyz is 503 when all cool down', async () => {
  const failing = await backend();
  failing.setFailure('500');
  const full = await backend();
  const p = await startTestProxy({
    upstream: [
      { url: failing.url, fallThrough: 'error', health: { maxFailures: 2, cooldownMs: 60_000 } },
      { url: full.url },
    ],
  });
  const paths = LIB?.versions.map((v) => `/example.com/lib/@v/${v.version}.mod`) ?? [];
  expect(paths.length).toBeGreaterThanOrEqual(2);
  for (const path of [...paths, `/example.com/base/@v/list`]) expect((await get(p.url + path)).status).toBe(200);
  // Two failures cooled it down: the third request went straight to the second entry.
  expect(failing.requests).toHaveLength(2);
  expect(p.logs.find((l) => l.msg === 'upstream cooling down')).toMatchObject({ upstream: failing.url, failures: 2 });
  const admin = p.server.url('admin');
  const metrics = (await get(`${admin}/metrics`)).body.toString();
  expect(metrics).toContain(`gpr_upstream_up{upstream="${failing.url}"} 0`);
  expect(metrics).toContain(`gpr_upstream_up{upstream="${full.url}"} 1`);
  expect(metrics).toContain(`gpr_upstream_cooldowns_total{upstream="${failing.url}"} 1`);
  expect((await get(`${admin}/readyz`)).status).toBe(200);

  const lone = await startTestProxy({ upstream: [{ url: failing.url, health: { maxFailures: 1, cooldownMs: 60_000 } }] });
  const loneAdmin = lone.server.url('admin');
  expect((await get(`${loneAdmin}/readyz`)).status).toBe(200);
  expect((await get(lone.url + INFO)).status).toBe(404); // fail open: the go command may try its next GOPROXY entry
  const readyz = await get(`${loneAdmin}/readyz`);
  expect(readyz.status).toBe(503);
  expect(readyz.body.toString()).toContain('cooling down');
  // While cooling, the entry is not asked at all.
  const before = failing.requests.length;
  const skipped = await get(lone.url + ZIP);
  expect(skipped.status).toBe(404);
  expect(skipped.body.toString()).toContain('skipped after 1 failures');
  expect(failing.requests.length).toBe(before);
});

test('an entry probed after its cool-down is healthy again once it answers', async () => {
  const flaky = await backend();
  flaky.setFailure('500');
  const p = await startTestProxy({ upstream: [{ url: flaky.url, health: { maxFailures: 1, cooldownMs: 1_500 } }] });
  expect((await get(p.url + INFO)).status).toBe(404);
  flaky.setFailure('none');
  expect((await get(p.url + ZIP)).status).toBe(404); // still cooling: not asked
  expect(flaky.count(ZIP)).toBe(0);
  await new Promise((r) => setTimeout(r, 1_600));
  expect((await get(p.url + ZIP)).status).toBe(200);
  expect(p.logs.map((l) => l.msg).filter((m) => m.startsWith('upstream '))).toEqual(['upstream cooling down', 'upstream probing', 'upstream healthy']);
});

test('per-entry headers and an auth token from the environment reach that backend only, and no log line', async () => {
  const internal = await backend({ modules: [] });
  const pub = await backend();
  const secret = 's3cret-token-value';
  const p = await startTestProxy(
    { upstream: [{ url: internal.url, auth: { tokenEnv: 'GPR_TEST_TOKEN' }, headers: { 'X-Team': 'build' } }, { url: pub.url }] },
    { env: { GPR_TEST_TOKEN: secret } },
  );
  expect((await get(p.url + INFO)).status).toBe(200);
  expect(internal.requests[0]?.headers).toMatchObject({ authorization: `Bearer ${secret}`, 'x-team': 'build' });
  expect(pub.requests[0]?.headers.authorization).toBeUndefined();
  expect(pub.requests[0]?.headers['x-team']).toBeUndefined();
  expect(JSON.stringify(p.logs)).not.toContain(secret);
});
