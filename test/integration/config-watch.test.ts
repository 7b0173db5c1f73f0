// reload.watch: kubelet's ConfigMap update, done the way kubelet's
// AtomicWriter does it, under a bounded loopback load on the compiled proxy.
// The mounted directory holds a timestamped directory, `..data` -> that
// directory and `config.json` -> `..data/config.json`; an update writes a new
// timestamped directory, points a new symlink `..data_tmp` at it, renames
// that over `..data`, then removes the old directory. No signal is sent.
// Config A rewrites `internal` to backend A, config B `goproxy` under backend
// B's /api/go/repo prefix; a probe with a never-seen version shows which one
// is in force. pollMs is a minute, so the directory watch alone must notice.
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { watchConfigFile } from '../../src/config/watch.js';
import { portOf, spawnProxy, tempDir } from '../helpers/child-proxy.js';
import { INTERNAL_PREFIX, STANDARD_PREFIX, startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { expectedBodies, fixturePaths } from '../helpers/fixture-paths.js';
import { get } from '../helpers/http-get.js';
import { startRequestLoop } from '../helpers/request-loop.js';

/** The load's upper bounds: it is stopped earlier once the swaps are done. */
const LOAD_MAX_MS = 30_000;
const LOAD_MAX_REQUESTS = 200_000;

async function backendWithCleanup(): Promise<FixtureBackend> {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  return backend;
}

let stamp = 0;
/** kubelet's AtomicWriter, step by step, for one new payload. */
async function kubeletWrite(dir: string, content: string): Promise<string> {
  const ts = `..2026_11_27_10_00_${String(stamp).padStart(2, '0')}.${100 + stamp++}`;
  await mkdir(join(dir, ts), { mode: 0o755 });
  await writeFile(join(dir, ts, 'config.json'), content);
  let old: string | undefined;
  try {
    old = await readlink(join(dir, '..data'));
  } catch {
    old = undefined; // first write
  }
  await symlink(ts, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (old === undefined) await symlink(join('..data', 'config.json'), join(dir, 'config.json'));
  else await rm(join(dir, old), { recursive: true, force: true });
  return ts;
}

test('a kubelet-style ConfigMap swap reloads without a signal; an invalid one changes nothing; no request fails', { timeout: 60_000 }, async () => {
  const [backendA, backendB] = [await backendWithCleanup(), await backendWithCleanup()];
  const paths = fixturePaths().map((p) => p.path);
  const bodies = await expectedBodies(backendA, paths);
  backendA.reset();

  const dir = await tempDir('gpr-configmap-');
  const base = {
    listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' },
    // Memory only: the disk tier's default directory (./cache) is shared by every proxy started here.
    cache: { mutableTtlMs: 0, dir: null },
    reload: { watch: true, debounceMs: 100, pollMs: 60_000 },
  };
  const configs = {
    A: JSON.stringify({ ...base, upstream: backendA.url, rewrite: 'internal' }),
    B: JSON.stringify({ ...base, upstream: `${backendB.url}${STANDARD_PREFIX}`, rewrite: 'goproxy' }),
  };
  await kubeletWrite(dir, configs.A);
  const proxy = spawnProxy({ configPath: join(dir, 'config.json') });
  const listening = await proxy.listening(2);
  const url = `http://127.0.0.1:${portOf(listening.find((l) => l.role === 'http')!.address)}`;
  const admin = `http://127.0.0.1:${portOf(listening.find((l) => l.role === 'admin')!.address)}`;

  let probes = 0;
  /** Which backend, in which path form, a never-seen version went to. */
  async function probe(): Promise<'A' | 'B' | 'none' | 'both'> {
    const n = ++probes;
    const got = await get(`${url}/example.com/lib/@v/v0.0.${n}.info`);
    expect(got.status).toBe(404);
    const a = backendA.count(`${INTERNAL_PREFIX}/example.com/lib/versions/v0.0.${n}/info`);
    const b = backendB.count(`${STANDARD_PREFIX}/example.com/lib/@v/v0.0.${n}.info`);
    return a && b ? 'both' : a ? 'A' : b ? 'B' : 'none';
  }
  async function reloads(): Promise<{ ok: number; failed: number }> {
    const text = (await get(`${admin}/metrics`)).body.toString();
    const n = (result: string) => Number(new RegExp(`^gpr_config_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    return { ok: n('ok'), failed: n('failed') };
  }
  /** Swaps in `content` and waits for the proxy's verdict on it. */
  const latenciesMs: number[] = [];
  async function swap(content: string): Promise<string> {
    const from = proxy.lines.length;
    const renamedAt = Date.now();
    await kubeletWrite(dir, content);
    const line = await proxy.waitFor((l) => l.msg === 'config reloaded' || l.msg === 'config reload failed', { from, timeoutMs: 20_000 });
    latenciesMs.push(line.time - renamedAt);
    return line.msg;
  }
  expect(await probe()).toBe('A');

  const load = startRequestLoop({ url, paths, bodies, keepAliveWorkers: 4, closeWorkers: 2 });
  const bound = setTimeout(() => void load.stop(), LOAD_MAX_MS);
  const cap = setInterval(() => load.attempts.length >= LOAD_MAX_REQUESTS && void load.stop(), 50);
  onTestFinished(async () => {
    clearTimeout(bound);
    clearInterval(cap);
    await load.stop();
  });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(300);

  expect(await swap(configs.B)).toBe('config reloaded');
  expect(await probe()).toBe('B');
  await sleep(300);
  // Broken: not JSON, then valid JSON with an unknown key. Each is logged, counted, and leaves B in force.
  expect(await swap('{"listen": ')).toBe('config reload failed');
  expect(await probe()).toBe('B');
  expect(await swap(JSON.stringify({ ...JSON.parse(configs.B), upstreams: 'x' }))).toBe('config reload failed');
  expect(await probe()).toBe('B');
  await sleep(300);
  expect(await swap(configs.A)).toBe('config reloaded');
  expect(await probe()).toBe('A');
  await sleep(300);
  await load.stop();
  clearTimeout(bound);
  clearInterval(cap);

  expect(await reloads()).toEqual({ ok: 2, failed: 2 });
  const failed = proxy.logged('config reload failed');
  expect(failed.map((l) => (l.err as { code: string }).code)).toEqual(['GPR_ERR_CONFIG_INVALID', 'GPR_ERR_CONFIG_INVALID']);
  expect((failed[1]!.err as { message: string }).message).toContain('unknown key "upstreams"');
  expect(proxy.logged('config file changed')).toHaveLength(4);
  expect(proxy.logged('config reloaded').map((l) => l.generation)).toEqual([2, 3]);

  // No request failed: every attempt got a 200 with the right body.
  const attempts = load.attempts;
  const bad = attempts.filter((a) => a.error || a.status !== 200 || !a.bodyOk);
  expect(attempts.length).toBeGreaterThan(200);
  expect(attempts.length).toBeLessThan(LOAD_MAX_REQUESTS);
  expect(bad.slice(0, 5)).toEqual([]);
  // Both configs' backends served the load, each in its own path form.
  expect(backendA.requests.some((r) => r.path.startsWith(`${INTERNAL_PREFIX}/`) && r.path.endsWith('/list'))).toBe(true);
  expect(backendB.requests.some((r) => r.path.startsWith(`${STANDARD_PREFIX}/`) && r.path.endsWith('/@v/list'))).toBe(true);
  // debounceMs is 100: the reload line follows the swap after about that, plus the reload itself.
  expect(Math.max(...latenciesMs)).toBeLessThan(5000);
  console.info(`config-watch: ${attempts.length} requests, 0 failed, over 4 kubelet swaps; swap -> reload line ${latenciesMs.join(', ')} ms`);

  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
});

test('the poll catches a change the directory watch cannot see (the parent directory itself is a swapped symlink)', async () => {
  const dir = await tempDir('gpr-watch-poll-');
  for (const [sub, content] of [['a', '{"v":1}'], ['b', '{"v":2}']] as const) {
    await mkdir(join(dir, sub));
    await writeFile(join(dir, sub, 'config.json'), content);
  }
  await symlink('a', join(dir, 'current'));
  let changes = 0;
  const stop = watchConfigFile({ path: join(dir, 'current', 'config.json'), debounceMs: 20, pollMs: 150, onChange: async () => void changes++ });
  onTestFinished(stop);
  await new Promise((r) => setTimeout(r, 400));
  expect(changes).toBe(0); // nothing changed yet: the baseline is not a change
  // fs.watch resolved `current` to a/ when it started; the swap happens outside a/.
  await symlink('b', join(dir, 'current.tmp'));
  await rename(join(dir, 'current.tmp'), join(dir, 'current'));
  const deadline = Date.now() + 3000;
  while (changes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(changes).toBe(1);
  await new Promise((r) => setTimeout(r, 400));
  expect(changes).toBe(1); // the same content is not a change again
});
