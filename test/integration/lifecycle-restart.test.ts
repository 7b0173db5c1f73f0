// Restarting the compiled proxy without refusing or resetting anyone. The
// test acts as systemd: a supervisor process (helpers/fd-supervisor.ts) holds
// the listening socket for the whole test, and starts each proxy with it as
// fd 3 (LISTEN_PID = the proxy's pid, LISTEN_FDS=1, LISTEN_FDNAMES=http).
// While a client load runs (keep-alive and one-connection-per-request
// workers), proxy A is replaced by B started first (both accept for a
// moment), then B is stopped and C started only after B exited: connections
// made meanwhile wait in the listen backlog, which outlives every proxy.
//
// HTTP/1.1 cannot tell an idle keep-alive client that the server is about to
// close: a GET the client sends just as the server closes that idle
// connection is reset unread. So a draining proxy leaves idle keep-alive
// connections open for IDLE_GRACE_MS (src/server.ts) and answers the next
// request on each with Connection: close. The client (helpers/request-loop.ts)
// would retry such a reset GET as the go command does, and the test could
// prove a failure was that race (a reused socket, no answer, and no access
// line for its unique Host); it asserts there were none at all.
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { portOf, tempDir, writeConfigAtomic, type ChildProxy } from '../helpers/child-proxy.js';
import { startFdSupervisor } from '../helpers/fd-supervisor.js';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { expectedBodies, fixturePaths } from '../helpers/fixture-paths.js';
import { startRequestLoop, type Attempt } from '../helpers/request-loop.js';
import { until } from '../helpers/proxy.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('SIGTERM and a new proxy on the held socket: nothing refused or reset, every answer 200 and right', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const paths = fixturePaths().map((p) => p.path);
  const bodies = await expectedBodies(backend, paths);
  const dir = await tempDir();
  const configPath = join(dir, 'config.json');
  // Socket-activated: the listen addresses are not used (admin and https were not passed).
  await writeConfigAtomic(configPath, {
    listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' },
    upstream: backend.url,
    rewrite: 'internal',
    cache: { mutableTtlMs: 0 },
    shutdown: { drainTimeoutMs: 10_000 },
  });

  const supervisor = await startFdSupervisor();
  const start = async (): Promise<ChildProxy> => {
    const proxy = await supervisor.spawnProxy(configPath);
    expect(await proxy.listening(1)).toEqual([{ role: 'http', address: `127.0.0.1:${supervisor.port}`, fd: 3 }]);
    return proxy;
  };
  const stop = async (proxy: ChildProxy): Promise<void> => {
    proxy.signal('SIGTERM');
    expect(await proxy.exited).toEqual({ code: 0, signal: null });
  };

  const a = await start();
  const load = startRequestLoop({ url: `http://127.0.0.1:${supervisor.port}`, paths, bodies, keepAliveWorkers: 6, closeWorkers: 4 });
  const served = () => load.attempts.filter((x) => x.status === 200).length;
  await until(() => served() >= 200, 10_000);

  // B first, then A goes: both accept from the one queue for a moment.
  const b = await start();
  await sleep(100);
  await stop(a);
  const since = served();
  await until(() => served() >= since + 200, 10_000);

  // B goes first, then C starts: the queue holds what arrives meanwhile.
  await stop(b);
  await sleep(200);
  const c = await start();
  const since2 = served();
  await until(() => served() >= since2 + 200, 10_000);
  await load.stop();
  await stop(c);

  const attempts = load.attempts;
  const failed = attempts.filter((x) => x.error);
  const proxies = [a, b, c];
  const readByServer = new Set(proxies.flatMap((p) => p.logged('request').map((l) => l.host as string)));
  const isKeepAliveRace = (x: Attempt) => x.keepAlive && x.reusedSocket && !x.error!.gotResponse && !readByServer.has(x.host);
  const races = failed.filter(isKeepAliveRace);
  const cHosts = new Set(c.logged('request').map((l) => l.host as string));
  const bStoppedAccepting = b.logged('draining')[0]!.time;
  const cListening = c.logged('listening')[0]!.time;
  const queued = () => attempts.filter((x) => !x.error && cHosts.has(x.host) && x.startedAt > bStoppedAccepting && x.startedAt < cListening);
  // For the report: what the client saw, and what the server had said before closing.
  console.info(
    `lifecycle-restart: ${attempts.length} attempts (${attempts.filter((x) => x.keepAlive).length} keep-alive), ` +
      `${failed.length} failed, ${races.length} keep-alive races retried; ` +
      `race errors ${JSON.stringify(countBy(races.map((x) => `${x.error!.code ?? x.error!.message} after Connection: ${x.previousConnection ?? '(new socket)'}`)))}; ` +
      `answers with Connection: close ${attempts.filter((x) => x.connection === 'close' && x.keepAlive).length} on keep-alive sockets; ` +
      `queued while no proxy accepted: ${queued().length}`,
  );

  expect(failed.filter((x) => x.error!.code === 'ECONNREFUSED')).toEqual([]);
  expect(failed.filter((x) => !isKeepAliveRace(x))).toEqual([]);
  // Not even the race: a draining proxy answers the next request on each
  // keep-alive connection with Connection: close before closing it.
  expect(races).toEqual([]);
  expect(attempts.filter((x) => x.keepAlive && x.connection === 'close').length).toBeGreaterThan(0);
  const answered = attempts.filter((x) => !x.error);
  expect(answered.filter((x) => x.status !== 200 || !x.bodyOk)).toEqual([]);
  expect(answered.length).toBeGreaterThanOrEqual(600);
  // A keep-alive socket is never reused after the server said Connection: close.
  expect(attempts.filter((x) => x.reusedSocket && x.previousConnection === 'close')).toEqual([]);

  // All three served, on both kinds of connection.
  for (const p of proxies) {
    const hosts = new Set(p.logged('request').map((l) => l.host as string));
    const mine = answered.filter((x) => hosts.has(x.host));
    expect(mine.filter((x) => x.keepAlive).length).toBeGreaterThan(0);
    expect(mine.filter((x) => !x.keepAlive).length).toBeGreaterThan(0);
  }
  // Requests sent after B stopped accepting and before C listened were queued
  // in the backlog, not refused, and C answered them.
  expect(queued().length).toBeGreaterThan(0);
  expect(proxies.map((p) => portOf(p.logged('listening')[0]!.address as string))).toEqual([supervisor.port, supervisor.port, supervisor.port]);
});

function countBy(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of keys) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}
