// 50 SIGHUP reloads of the compiled proxy under a 10 s autocannon load.
// Two fixture backends tell the configs apart by the paths they receive:
// config A rewrites `internal` to backend A (/v1/modules/...), config B is
// `goproxy` under backend B's /api/go/repo prefix. The valid reloads
// alternate A and B; every 5th writes an invalid file instead (bad JSON, an
// unknown key, cache.maxBytes -1), which must change nothing. The file is
// replaced atomically (temp file + rename), and the test waits for each
// reload's log line before the next signal, so no two reloads coalesce and
// signalled = applied + failed exactly. After each reload a probe with a
// never-seen version shows which backend, in which path form, the proxy
// uses now. `list` is mutable with mutableTtlMs 0, so the load keeps
// reaching the backends.
import autocannon from 'autocannon';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { portOf, spawnProxy, tempDir, writeConfigAtomic, type LogLine } from '../helpers/child-proxy.js';
import { INTERNAL_PREFIX, STANDARD_PREFIX, startFixtureBackend, type FixtureBackend } from '../helpers/fixture-backend.js';
import { expectedBodies, fixturePaths } from '../helpers/fixture-paths.js';
import { get } from '../helpers/http-get.js';

const RELOADS = 50;
const INTERVAL_MS = 200;
const CONNECTIONS = 24;
/** Requests per second over all connections: bounds the count (and the access lines kept) to ~45 000. */
const RATE = 4000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function backendWithCleanup(): Promise<FixtureBackend> {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  return backend;
}

test('50 SIGHUPs under load: valid configs apply, invalid ones change nothing, no request fails', async () => {
  const [backendA, backendB] = [await backendWithCleanup(), await backendWithCleanup()];
  const paths = fixturePaths().map((p) => p.path);
  const bodies = await expectedBodies(backendA, paths);
  backendA.reset();

  const dir = await tempDir();
  const configPath = join(dir, 'config.json');
  const base = { listen: { http: '127.0.0.1:0', https: null, admin: null }, cache: { mutableTtlMs: 0 } };
  const configs = {
    A: { ...base, upstream: backendA.url, rewrite: 'internal' },
    B: { ...base, upstream: `${backendB.url}${STANDARD_PREFIX}`, rewrite: 'goproxy' },
  } as const;
  // Invalid files, and what the `config reload failed` line must name.
  const invalid: Array<{ content: object | string; problem: string }> = [
    { content: '{"listen": {"http": "127.0.0.1:0"', problem: 'not valid JSON' },
    { content: { ...configs.A, cache: { mutableTtlMs: 0, maxBytez: 1 } }, problem: 'cache: unknown key "maxBytez"' },
    { content: { ...configs.A, cache: { mutableTtlMs: 0, maxBytes: -1 } }, problem: 'cache.maxBytes must be a positive integer, got -1' },
  ];
  await writeConfigAtomic(configPath, configs.A);
  const proxy = spawnProxy({ configPath });
  const [listening] = await proxy.listening(1);
  const url = `http://127.0.0.1:${portOf(listening!.address)}`;

  /** Which backend, in which path form, a never-seen version `v0.0.N` of example.com/lib went to. */
  async function probe(n: number): Promise<'A' | 'B' | 'none' | 'both'> {
    const got = await get(`${url}/example.com/lib/@v/v0.0.${n}.info`);
    expect(got.status).toBe(404); // the backend's answer for an unknown version
    const a = backendA.count(`${INTERNAL_PREFIX}/example.com/lib/versions/v0.0.${n}/info`);
    const b = backendB.count(`${STANDARD_PREFIX}/example.com/lib/@v/v0.0.${n}.info`);
    return a && b ? 'both' : a ? 'A' : b ? 'B' : 'none';
  }
  expect(await probe(0)).toBe('A');

  let mismatches = 0;
  let stopLoad = () => {};
  const load = new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: CONNECTIONS,
        overallRate: RATE,
        duration: 60, // an upper bound: stopped below once the reloads are done
        timeout: 10,
        requests: paths.map((path) => ({
          method: 'GET' as const,
          path,
          onResponse: (status: number, body: string) => {
            if (status === 200 && body !== bodies.get(path)) mismatches++;
          },
        })),
      },
      (err: Error | null, result: autocannon.Result) => (err ? reject(err) : resolve(result)),
    );
    stopLoad = () => instance.stop();
  });
  onTestFinished(() => stopLoad());

  let current: 'A' | 'B' = 'A';
  let generation = 1;
  const outcomes: Array<{ reload: number; line: LogLine; probe: string; expected: string }> = [];
  for (let i = 1; i <= RELOADS; i++) {
    const startedAt = performance.now();
    const bad = i % 5 === 0 ? invalid[(i / 5 - 1) % invalid.length]! : undefined;
    if (bad) await writeConfigAtomic(configPath, bad.content);
    else {
      current = current === 'A' ? 'B' : 'A';
      await writeConfigAtomic(configPath, configs[current]);
    }
    const from = proxy.lines.length;
    proxy.signal('SIGHUP');
    const line = await proxy.waitFor((l) => l.msg === 'config reloaded' || l.msg === 'config reload failed', { from });
    if (bad) {
      expect(line).toMatchObject({ msg: 'config reload failed', err: { code: 'GPR_ERR_CONFIG_INVALID' } });
      expect((line.err as { message: string }).message).toContain(bad.problem);
    } else {
      expect(line).toMatchObject({ msg: 'config reloaded', generation: ++generation, upstream: configs[current].upstream, rewrite: configs[current].rewrite });
    }
    outcomes.push({ reload: i, line, probe: await probe(i), expected: current });
    await sleep(INTERVAL_MS - (performance.now() - startedAt));
  }
  // After each reload the proxy used the config last applied: an invalid file left the previous one in place.
  expect(outcomes.map((o) => `${o.reload}:${o.probe}`)).toEqual(outcomes.map((o) => `${o.reload}:${o.expected}`));

  // The load went through both configs' backends, in their path forms.
  const seenA = backendA.requests.filter((r) => r.path.startsWith(`${INTERNAL_PREFIX}/`) && r.path.endsWith('/list')).length;
  const seenB = backendB.requests.filter((r) => r.path.startsWith(`${STANDARD_PREFIX}/`) && r.path.endsWith('/@v/list')).length;
  expect(seenA).toBeGreaterThan(0);
  expect(seenB).toBeGreaterThan(0);
  expect(backendA.requests.filter((r) => !r.path.startsWith(`${INTERNAL_PREFIX}/`))).toEqual([]);
  expect(backendB.requests.filter((r) => !r.path.startsWith(`${STANDARD_PREFIX}/`))).toEqual([]);

  // With the last valid config alone in force, only its backend is asked.
  backendA.reset();
  backendB.reset();
  await sleep(500);
  const [finalBackend, otherBackend] = current === 'A' ? [backendA, backendB] : [backendB, backendA];
  expect(finalBackend.requests.length).toBeGreaterThan(0);
  expect(otherBackend.requests).toEqual([]);

  stopLoad();
  const result = await load;
  expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx, mismatches }).toEqual({ errors: 0, timeouts: 0, non2xx: 0, mismatches: 0 });
  // The load really overlapped the reloads (a floor, not a speed assertion:
  // a busy CI machine answered 17,000-19,000 where an idle one answers 40,000).
  expect(result['2xx']).toBeGreaterThan(RATE);

  // Signalled 50 = applied + failed; none coalesced, since each waited for the previous one.
  expect(proxy.logged('config reloaded')).toHaveLength(RELOADS - RELOADS / 5);
  expect(proxy.logged('config reload failed')).toHaveLength(RELOADS / 5);
  expect(proxy.logged('request').filter((l) => (l.status as number) >= 500)).toEqual([]);
  console.info(`lifecycle-reload: ${result['2xx']} answers in ${result.duration} s over ${CONNECTIONS} connections; backend list fetches A ${seenA}, B ${seenB}`);

  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
});
