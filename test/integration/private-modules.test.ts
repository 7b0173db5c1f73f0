// Private module patterns (GOPRIVATE semantics): routed to their own
// upstream, answered 404 (the go command goes on to `direct`) or 403 here;
// a checksum lookup of a private module is refused here with a message about
// GOPRIVATE/GONOSUMDB; per-pattern failure policy. The public backend's and
// the checksum database's request logs prove a private path never reached them.
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { fixtureModules } from '../helpers/fixture-modules.js';
import { goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy } from '../helpers/proxy.js';

const GO_TIMEOUT_MS = 120_000;
const version = (path: string) => fixtureModules().find((m) => m.path === path)?.versions[0]?.version as string;
const LIB_V = version('example.com/lib');
const BASE_V = version('example.com/base');

async function backend(): Promise<FixtureBackend> {
  const b = await startFixtureBackend();
  onTestFinished(() => b.close());
  return b;
}

/** True when any request the backend saw names `module`. */
const saw = (b: FixtureBackend, module: string) => b.requests.some((r) => r.path.includes(module));

async function setup(privateRules: unknown[]) {
  const pub = await backend();
  const priv = await backend();
  const sum = await backend(); // stands in for a checksum database: must never see a private name
  const rules = privateRules.map((r) => JSON.parse(JSON.stringify(r).replaceAll('PRIVATE_URL', priv.url)) as unknown);
  const p = await startTestProxy({ upstream: pub.url, sumdb: { 'sum.golang.org': sum.url }, private: rules });
  return { pub, priv, sum, p };
}

test('routed: a private module goes to its own upstream only, also through the go command', { timeout: GO_TIMEOUT_MS * 2 }, async () => {
  const { pub, priv, p } = await setup([{ match: 'example.com/lib,example.com/base', upstream: 'PRIVATE_URL' }]);
  const r = await get(`${p.url}/example.com/lib/@v/${LIB_V}.zip`);
  expect(r.status).toBe(200);
  expect(r.body.equals(priv.zip('example.com/lib', LIB_V))).toBe(true);
  expect(priv.count(`/example.com/lib/@v/${LIB_V}.zip`)).toBe(1);

  const { env, work } = await goWorkspace(p.url);
  const out = ok(await runGo(['mod', 'download', '-json', `example.com/lib@${LIB_V}`, `example.com/base@${BASE_V}`, 'example.com/BurntSushi/toml@v1.0.0'], { cwd: work, env, timeoutMs: GO_TIMEOUT_MS }));
  for (const m of parseJsonStream(out.stdout)) expect(m.Error, m.Path).toBeUndefined();
  expect(saw(priv, 'example.com/base')).toBe(true);
  expect(saw(priv, 'BurntSushi')).toBe(false);
  expect(saw(pub, 'example.com/lib')).toBe(false);
  expect(saw(pub, 'example.com/base')).toBe(false);
  expect(saw(pub, 'burnt')).toBe(true);
});

test('404 and 403 rules are answered here, with the pattern in the message', async () => {
  const { pub, priv, p } = await setup([
    { match: 'example.com/rc/*', status: 404 },
    { match: '*.com/big', status: 403 },
  ]);
  const notHere = await get(`${p.url}/example.com/rc/mod/@v/list`);
  expect(notHere.status).toBe(404);
  expect(notHere.body.toString()).toContain('pattern example.com/rc/*');
  expect(notHere.body.toString()).toContain('GOPRIVATE');
  const refused = await get(`${p.url}/example.com/big/@latest`);
  expect(refused.status).toBe(403);
  expect(refused.body.toString()).toContain('is private');
  // A non-matching module still goes to the public upstream.
  expect((await get(`${p.url}/example.com/lib/@v/list`)).status).toBe(200);
  expect(saw(pub, 'example.com/rc')).toBe(false);
  expect(saw(pub, 'example.com/big')).toBe(false);
  expect(priv.requests).toHaveLength(0);
  expect(p.accessLines().map((l) => [l.status, l.err])).toEqual([[404, 'GPR_ERR_PRIVATE_NOT_HERE'], [403, 'GPR_ERR_PRIVATE_REFUSED'], [200, null]]);
});

test('a checksum lookup of a private module is refused here and never forwarded; public lookups are', async () => {
  const { sum, p } = await setup([{ match: 'example.com/lib', upstream: 'PRIVATE_URL' }]);
  const r = await get(`${p.url}/sumdb/sum.golang.org/lookup/example.com/lib/sub@${LIB_V}`);
  expect(r.status).toBe(403);
  expect(r.body.toString()).toMatch(/GOPRIVATE or GONOSUMDB/);
  expect(saw(sum, 'example.com/lib')).toBe(false);
  expect(sum.requests).toHaveLength(0);
  // The same database still gets lookups of public modules (the fixture answers 404: no sumdb there).
  await get(`${p.url}/sumdb/sum.golang.org/lookup/example.com/base@${BASE_V}`);
  expect(sum.requests.map((q) => q.path)).toEqual([`/lookup/example.com/base@${BASE_V}`]);
});

test.each([
  ['notfound', 404],
  ['error', 502],
] as const)('a failing private upstream fails %s (%i) and never falls back to the public one', async (onFailure, status) => {
  const { pub, priv, p } = await setup([{ match: 'example.com/lib', upstream: 'PRIVATE_URL', onFailure }]);
  priv.setFailure('500');
  const r = await get(`${p.url}/example.com/lib/@v/${LIB_V}.info`);
  expect(r.status).toBe(status);
  expect(priv.requests).toHaveLength(1);
  expect(saw(pub, 'example.com/lib')).toBe(false);
});
