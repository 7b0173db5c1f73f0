// `go-proxy-rewriter reload` (what `systemctl reload` runs, ExecReload= in
// go-proxy-rewriter.service) against the compiled proxy, without systemd:
// it POSTs /reload on the admin listener, waits, exits 0 with the new
// generation, and exits 1 naming the problem when the config was rejected,
// while the old config keeps serving. Two fixture backends tell the configs
// apart by the paths they receive (A: `internal` layout, B: `goproxy` under
// /api/go/repo). test/system/ runs the same through systemd itself.
import { execFile, spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { MAIN_JS, portOf, spawnProxy, tempDir, writeConfigAtomic } from '../helpers/child-proxy.js';
import { INTERNAL_PREFIX, STANDARD_PREFIX, startFixtureBackend } from '../helpers/fixture-backend.js';
import { get } from '../helpers/http-get.js';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN_JS, ...args], { timeout: 20_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('reload waits for the outcome: 0 with the generation, 1 with the problem while the old config serves', async () => {
  const backendA = await startFixtureBackend();
  onTestFinished(() => backendA.close());
  const backendB = await startFixtureBackend();
  onTestFinished(() => backendB.close());
  const dir = await tempDir();
  const configPath = join(dir, 'config.json');
  const listen = { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' };
  const configA = { listen, upstream: backendA.url, rewrite: 'internal' };
  const configB = { listen, upstream: `${backendB.url}${STANDARD_PREFIX}`, rewrite: 'goproxy' };
  await writeConfigAtomic(configPath, configA);
  const proxy = spawnProxy({ configPath });
  const listening = await proxy.listening(2);
  const port = (role: string) => portOf(listening.find((l) => l.role === role)!.address);
  const url = `http://127.0.0.1:${port('http')}`;
  const admin = `http://127.0.0.1:${port('admin')}`;

  let n = 0;
  /** Which backend a never-seen version of example.com/lib goes to now. */
  async function probe(): Promise<'A' | 'B' | 'none'> {
    n += 1;
    expect((await get(`${url}/example.com/lib/@v/v0.0.${n}.info`)).status).toBe(404);
    if (backendA.count(`${INTERNAL_PREFIX}/example.com/lib/versions/v0.0.${n}/info`)) return 'A';
    if (backendB.count(`${STANDARD_PREFIX}/example.com/lib/@v/v0.0.${n}.info`)) return 'B';
    return 'none';
  }
  expect(await probe()).toBe('A');

  // A valid config: exits 0 once it serves.
  await writeConfigAtomic(configPath, configB);
  const ok = await cli(['reload', '--admin', admin]);
  expect(ok).toMatchObject({ code: 0, stdout: 'reloaded: config generation 2\n', stderr: '' });
  expect(await probe()).toBe('B');

  // A rejected config: exits 1 with the proxy's code and problem; B still serves.
  await writeConfigAtomic(configPath, { ...configA, cache: { maxBytes: -1 } });
  const failedAt = proxy.lines.length;
  const bad = await cli(['reload', '--admin', admin]);
  expect(bad.code).toBe(1);
  expect(bad.stdout).toBe('');
  expect(bad.stderr).toContain(`GPR_ERR_RELOAD: reload through ${admin} failed: 500 GPR_ERR_CONFIG_INVALID: invalid config in ${configPath}`);
  expect(bad.stderr).toContain('cache.maxBytes must be a positive integer, got -1');
  await proxy.waitFor((l) => l.msg === 'config reload failed', { from: failedAt });
  expect(await probe()).toBe('B');
  for (let i = 0; i < 3; i++) expect((await cli(['reload', '--admin', admin])).code).toBe(1);
  expect(await probe()).toBe('B');

  // The address from a config file (listen.admin), as without systemd.
  await writeConfigAtomic(configPath, configA);
  const cliConfig = join(dir, 'cli.json');
  await writeConfigAtomic(cliConfig, { listen: { admin: `127.0.0.1:${port('admin')}` } });
  expect(await cli(['reload', '--config', cliConfig])).toMatchObject({ code: 0, stdout: 'reloaded: config generation 3\n' });
  expect(await probe()).toBe('A');

  // Only POST reloads.
  const viaGet = await get(`${admin}/reload`);
  expect(viaGet.status).toBe(405);
  expect(viaGet.headers.allow).toBe('POST');
  expect(proxy.logged('config reloaded')).toHaveLength(2);

  // Nothing listens at --admin: with --pid it falls back to SIGHUP (outcome
  // unknown, said on stderr, exit 0); without, it fails.
  const closed = net.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadAdmin = `http://127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const noPid = await cli(['reload', '--admin', deadAdmin]);
  expect(noPid.code).toBe(1);
  expect(noPid.stderr).toContain('ECONNREFUSED');
  await writeConfigAtomic(configPath, configB);
  const at = proxy.lines.length;
  const viaSignal = await cli(['reload', '--admin', deadAdmin, '--pid', String(proxy.pid)]);
  expect(viaSignal.code).toBe(0);
  expect(viaSignal.stderr).toContain(`sent SIGHUP to ${proxy.pid} instead`);
  expect((await proxy.waitFor((l) => l.msg === 'config reloaded', { from: at })).generation).toBe(4);
  expect(await probe()).toBe('B');
});

test('with workers: 2 the supervisor answers for the whole set', async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const dir = await tempDir();
  const configPath = join(dir, 'config.json');
  const good = { listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' }, upstream: backend.url, rewrite: 'internal', workers: 2, cache: { dir: null } };
  await writeConfigAtomic(configPath, good);
  const proxy = spawnProxy({ configPath });
  const listening = await proxy.listening(2);
  const admin = `http://127.0.0.1:${portOf(listening.find((l) => l.role === 'admin')!.address)}`;
  await writeConfigAtomic(configPath, { ...good, cache: { dir: null, mutableTtlMs: 1 } });
  expect(await cli(['reload', '--admin', admin])).toMatchObject({ code: 0, stdout: 'reloaded: config generation 2\n' });
  await writeConfigAtomic(configPath, { ...good, cache: { dir: null, maxBytes: -1 } });
  const bad = await cli(['reload', '--admin', admin]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('cache.maxBytes must be a positive integer, got -1');
});

test('an admin listener without POST /reload (an older proxy): SIGHUP to --pid, else exit 1', async () => {
  const old = http.createServer((req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found: try /healthz, /readyz or /metrics\n');
  });
  await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => old.close(() => resolve())));
  const admin = `http://127.0.0.1:${(old.address() as net.AddressInfo).port}`;
  expect((await cli(['reload', '--admin', admin])).code).toBe(1);

  // A stand-in for the old proxy's process: reports the SIGHUP and exits.
  const target = spawn(process.execPath, ['-e', "process.on('SIGHUP', () => { console.log('hup'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000);"], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => void target.kill('SIGKILL'));
  let out = '';
  target.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  await new Promise<void>((resolve) => target.stdout.once('data', () => resolve()));
  const exited = new Promise<number | null>((resolve) => target.once('close', resolve));
  const r = await cli(['reload', '--admin', admin, '--pid', String(target.pid)]);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain(`has no POST /reload (404): sent SIGHUP to ${target.pid} instead`);
  expect(await exited).toBe(0);
  expect(out).toBe('ready\nhup\n');
});

test('reload refuses a config without an admin listener and a bad --admin', async () => {
  const dir = await tempDir();
  const cliConfig = join(dir, 'cli.json');
  await writeConfigAtomic(cliConfig, { listen: { admin: null } });
  const none = await cli(['reload', '--config', cliConfig]);
  expect(none.code).toBe(1);
  expect(none.stderr).toContain('GPR_ERR_RELOAD: reload through listen.admin failed: the config has no admin listener');
  const bad = await cli(['reload', '--admin', 'ftp://127.0.0.1:9180']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('--admin must be an http:// URL');
});
