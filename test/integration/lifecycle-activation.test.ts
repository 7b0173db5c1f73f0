// The compiled proxy under the real systemd-socket-activate(1) (Debian's
// systemd package), serving HTTP and HTTPS on the sockets it passes, and
// binding none of the addresses in its config.
//
// Learning the ports without a race: systemd-socket-activate 252 refuses
// `-l 127.0.0.1:0` ("Failed to parse socket address"), so it cannot bind a
// kernel-chosen port, and it execs the program only on the first connection,
// so the proxy's `listening` line cannot tell the port before a client
// needs it. It does pass through fds it was itself activated with ("file
// descriptors from sd_listen_fds() will be passed through"). So the test
// binds two sockets on 127.0.0.1 port 0, spawns
//   sh -c 'LISTEN_PID=$$ LISTEN_FDS=2 exec systemd-socket-activate --fdname=http:https "$@"' sh node dist/src/main.js serve --config FILE
// with them on fds 3 and 4, closes its own copies, and connects: that first
// request wakes systemd-socket-activate, which execs the proxy with
// LISTEN_PID (same pid), LISTEN_FDS=2, LISTEN_FDNAMES=http:https.
// No port is picked and rebound.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo, Server } from 'node:net';
import { join } from 'node:path';
import { beforeAll, expect, onTestFinished, test } from 'vitest';
import { spawnProxy, tempDir, writeConfigAtomic } from '../helpers/child-proxy.js';
import { bindLoopback } from '../helpers/fd-supervisor.js';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { get } from '../helpers/http-get.js';
import { listeningSockets } from '../helpers/proc-sockets.js';

const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';

beforeAll(() => {
  if (!existsSync(SOCKET_ACTIVATE)) {
    throw new Error(`${SOCKET_ACTIVATE} is missing: this test needs it (apt-get install -y systemd)`);
  }
  execFileSync(SOCKET_ACTIVATE, ['--version'], { stdio: 'ignore' });
});

const portOf = (s: Server) => (s.address() as AddressInfo).port;

/** Binds a loopback port and keeps it for the whole test, so the proxy binding it would fail with EADDRINUSE. */
async function occupied(): Promise<string> {
  const server = await bindLoopback();
  onTestFinished(() => void server.close());
  return `127.0.0.1:${portOf(server)}`;
}

test('serves HTTP and HTTPS on the passed fds and binds no config address', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const dir = await tempDir();
  const certs = join(dir, 'certs');
  const configPath = join(dir, 'config.json');
  const configListen = { http: await occupied(), https: await occupied(), admin: await occupied() };
  // Its own disk tier: the default, cache/ in the working directory, would carry objects over from other runs.
  await writeConfigAtomic(configPath, { listen: configListen, upstream: backend.url, rewrite: 'internal', tls: { dir: certs }, cache: { dir: join(dir, 'cache') } });

  const [httpSocket, httpsSocket] = [await bindLoopback(), await bindLoopback()];
  const [httpPort, httpsPort] = [portOf(httpSocket), portOf(httpsSocket)];
  const proxy = spawnProxy({
    configPath,
    wrap: (argv) => ['/bin/sh', '-c', `LISTEN_PID=$$ LISTEN_FDS=2 exec ${SOCKET_ACTIVATE} --fdname=http:https "$@"`, 'sh', ...argv],
    passSockets: [httpSocket, httpsSocket],
  });

  // The first connection is what makes systemd-socket-activate exec the proxy;
  // the request waits in the backlog meanwhile.
  const info = await get(`http://127.0.0.1:${httpPort}/example.com/lib/@v/v1.0.0.info`);
  expect(info.status).toBe(200);
  expect(info.body.toString()).toBe((await get(`${backend.url}/example.com/lib/@v/v1.0.0.info`)).body.toString());
  expect(JSON.parse(info.body.toString())).toEqual({ Version: 'v1.0.0', Time: expect.any(String) });
  // Rewritten to the internal layout, so it was this proxy that answered.
  expect(backend.count('/v1/modules/example.com/lib/versions/v1.0.0/info')).toBe(1);

  expect(proxy.stderr()).toContain(`Listening on 127.0.0.1:${httpPort} as 3.`);
  expect(proxy.stderr()).toContain(`Listening on 127.0.0.1:${httpsPort} as 4.`);
  expect(await proxy.listening(2)).toEqual([
    { role: 'http', address: `127.0.0.1:${httpPort}`, fd: 3 },
    { role: 'https', address: `127.0.0.1:${httpsPort}`, fd: 4 },
  ]);
  // exec'd in place: the pid the test spawned is the proxy's, i.e. LISTEN_PID matched.
  expect(proxy.lines[0]?.pid).toBe(proxy.pid);

  // HTTPS on fd 4: the self-signed localhost certificate, then a minted leaf for a Go proxy host.
  const localhost = await get(`https://127.0.0.1:${httpsPort}/example.com/app/@v/v1.2.0.mod`, {
    servername: 'localhost',
    headers: { host: 'localhost' },
    ca: await readFile(join(certs, 'localhost.pem')),
  });
  expect(localhost.status).toBe(200);
  expect(localhost.body.toString()).toBe((await get(`${backend.url}/example.com/app/@v/v1.2.0.mod`)).body.toString());
  const golang = await get(`https://127.0.0.1:${httpsPort}/example.com/!burnt!sushi/toml/@v/list`, {
    servername: 'proxy.golang.org',
    headers: { host: 'proxy.golang.org' },
    ca: await readFile(join(certs, 'ca.pem')),
  });
  expect(golang.status).toBe(200);
  expect(golang.body.toString()).toBe('v1.0.0\n');
  expect(backend.count('/v1/modules/example.com/!burnt!sushi/toml/list')).toBe(1);

  // The proxy listens on exactly the two passed sockets: nothing from config.listen
  // (binding an occupied address would have failed the start with EADDRINUSE anyway).
  expect(await listeningSockets(proxy.pid)).toEqual([
    { fd: 3, port: httpPort },
    { fd: 4, port: httpsPort },
  ]);
  expect(proxy.logged('listening').map((l) => l.role)).toEqual(['http', 'https']);

  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
  expect(proxy.lines.map((l) => l.msg).filter((m) => m === 'draining' || m === 'stopped')).toEqual(['draining', 'stopped']);
});
