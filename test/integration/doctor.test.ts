// `go-proxy-rewriter doctor`, run as the user would (node dist/src/main.js
// doctor --json --config FILE) against real setups: a healthy plain-HTTP one
// (GOPROXY pointing at the proxy) where every check PASSes or SKIPs with a
// reason, then each broken one asserting the failing check and its advice:
// the backend down, GOPROXY=direct, an untrusted CA (SSL_CERT_FILE pointing
// at another CA), and no redirect. Interception runs in a network namespace
// the test creates (the Go proxy hosts resolve to 127.0.0.1 there), with the
// proxy and backend in test/fixtures/intercept-stack.ts inside it, doctor
// once without and once with the iptables redirect of port 443. Needs
// build (npm run build), go, openssl, ip, iptables, root.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect, onTestFinished, test } from 'vitest';
import { MAIN_JS, portOf, ROOT, spawnProxy, tempDir } from '../helpers/child-proxy.js';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { requireTool } from '../helpers/go.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { openssl } from '../helpers/openssl.js';

interface Check {
  name: string;
  status: 'PASS' | 'FAIL' | 'SKIP';
  detail: string;
  fix: string;
  durationMs: number;
}
interface Report {
  version: number;
  ok: boolean;
  summary: { pass: number; fail: number; skip: number };
  checks: Check[];
}
interface DoctorRun {
  code: number;
  report: Report;
  stderr: string;
}

const NAMES = ['proxy', 'listeners', 'interception', 'trust', 'go-env', 'fetch', 'upstream', 'cache'];
const HOSTS = ['proxy.golang.org', 'goproxy.cn', 'goproxy.io', 'sum.golang.org'];
const MODULE = 'example.com/lib';

/** The environment doctor (and its go env) gets: PATH, a fresh HOME, no go config file, plus `extra`. */
async function doctorEnv(extra: Record<string, string>): Promise<Record<string, string>> {
  const home = await tempDir('gpr-doctor-home-');
  requireTool('go');
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, GOENV: 'off', GOTOOLCHAIN: 'local', ...extra };
}

function parse(code: number, stdout: string, stderr: string): DoctorRun {
  let report: Report;
  try {
    report = JSON.parse(stdout) as Report;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { code, report, stderr };
}

/** node dist/src/main.js doctor --json ARGS. */
function doctor(args: string[], env: Record<string, string>): Promise<DoctorRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN_JS, 'doctor', '--json', ...args], { env, cwd: ROOT, timeout: 60_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve(parse(code, stdout, stderr));
    });
  });
}

function byName(run: DoctorRun): Record<string, Check> {
  expect(run.report.checks.map((c) => c.name)).toEqual(NAMES);
  return Object.fromEntries(run.report.checks.map((c) => [c.name, c]));
}

function statuses(run: DoctorRun): Record<string, string> {
  return Object.fromEntries(run.report.checks.map((c) => [c.name, c.status]));
}

test('plain HTTP with GOPROXY at the proxy: all PASS or SKIP; then backend down, GOPROXY=direct and GOSUMDB=off each FAIL with their fix', { timeout: 90_000 }, async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const dir = await tempDir('gpr-doctor-');
  const proxyConfig = join(dir, 'proxy.json');
  await writeFile(proxyConfig, JSON.stringify({ listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' }, upstream: backend.url, rewrite: 'goproxy', cache: { dir: null } }));
  const proxy = spawnProxy({ configPath: proxyConfig });
  const listening = await proxy.listening(2);
  const address = (role: string) => listening.find((l) => l.role === role)!.address;
  // doctor reads the same settings with the ports the proxy got.
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ listen: { http: address('http'), https: null, admin: address('admin') }, upstream: backend.url, rewrite: 'goproxy' }));
  const goproxy = `http://127.0.0.1:${portOf(address('http'))}`;
  const args = ['--config', config, '--module', MODULE, '--samples', '5', '--sla-ms', '2000'];

  const healthyEnv = await doctorEnv({ GOPROXY: goproxy });
  const healthy = await doctor(args, healthyEnv);
  const h = byName(healthy);
  expect(statuses(healthy)).toEqual({ proxy: 'PASS', listeners: 'SKIP', interception: 'SKIP', trust: 'SKIP', 'go-env': 'PASS', fetch: 'PASS', upstream: 'PASS', cache: 'PASS' });
  expect({ code: healthy.code, ok: healthy.report.ok, version: healthy.report.version, summary: healthy.report.summary }).toEqual({ code: 0, ok: true, version: 1, summary: { pass: 5, fail: 0, skip: 3 } });
  expect(h.proxy!.detail).toContain('/readyz answered 200');
  expect(h.listeners!.detail).toContain('not under systemd');
  expect(h.interception!.detail).toContain('listen.https is null');
  expect(h['go-env']!.detail).toContain(`GOPROXY=${goproxy}`);
  expect(h.fetch!.detail).toMatch(new RegExp(`GET ${goproxy}/example.com/lib/@v/list: 5 × 200, p50 [\\d.]+ ms`));
  expect(h.upstream!.detail).toContain(`${backend.url}: up`);
  // /cache/stats after the fetches: the list is in the memory tier.
  expect(h.cache!.detail).toMatch(/^memory [1-9]\d* entries, \d+ bytes of \d+/);
  for (const c of healthy.report.checks) expect(c.fix).toBe('');
  // The five fetches went through the proxy: the first one reached the backend.
  expect(backend.count('/example.com/lib/@v/list')).toBe(1);

  // The same, as lines for people: one per check, status first, exit 0.
  const text = await new Promise<string>((resolve) => execFile(process.execPath, [MAIN_JS, 'doctor', ...args], { env: healthyEnv, cwd: ROOT, encoding: 'utf8' }, (_e, out) => resolve(out)));
  expect(text.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2).join(' '))).toEqual(healthy.report.checks.map((c) => `${c.status} ${c.name}`));

  const direct = await doctor(args, await doctorEnv({ GOPROXY: 'direct' }));
  expect(direct.code).toBe(1);
  expect(direct.report.ok).toBe(false);
  expect(byName(direct)['go-env']).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('GOPROXY=direct bypasses the proxy') as string, fix: `go env -w GOPROXY=${goproxy}` });

  const sumdbOff = await doctor(args, await doctorEnv({ GOPROXY: goproxy, GOSUMDB: 'off' }));
  expect(byName(sumdbOff)['go-env']).toMatchObject({ status: 'FAIL', detail: expect.stringContaining('GOSUMDB=off turns checksum verification off') as string });
  expect(sumdbOff.code).toBe(1);

  await backend.close();
  const down = await doctor(args, await doctorEnv({ GOPROXY: goproxy }));
  expect(down.code).toBe(1);
  const d = byName(down);
  expect(d.upstream).toMatchObject({ status: 'FAIL', detail: expect.stringContaining(`${backend.url}: connect ECONNREFUSED`) as string, fix: expect.stringContaining('start or fix the backend') as string });
  expect(d.proxy!.status).toBe('PASS');
  expect(down.report.summary.fail).toBe(1);
  // --skip reports a check as SKIP (the list is still served from the cache, so nothing else fails).
  const skipped = await doctor([...args, '--skip', 'upstream'], await doctorEnv({ GOPROXY: goproxy }));
  expect({ code: skipped.code, upstream: byName(skipped).upstream }).toMatchObject({ code: 0, upstream: { status: 'SKIP', detail: 'skipped by --skip', fix: '' } });
});

/** The intercept stack (proxy with http+https, fixture backend) in a new namespace; resolves once it is ready. */
async function startStack(dir: string): Promise<{ ns: Netns; httpUrl: string; httpsPort: number; caPem: string; backend: string }> {
  const ns = await createNetns({ hosts: HOSTS });
  onTestFinished(() => ns.remove());
  const child = ns.spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/fixtures/intercept-stack.ts'), dir], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('intercept stack not ready within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`intercept stack exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const parsed = JSON.parse(line) as { stack?: string; httpUrl: string; httpsPort: number; caPem: string; backend: string };
      if (parsed.stack !== 'ready') return;
      clearTimeout(timer);
      resolve({ ns, ...parsed });
    });
  });
}

test('interception in a network namespace: no redirect FAILs with the fix; with it, and SSL_CERT_FILE at our CA, PASS; another CA in SSL_CERT_FILE FAILs trust', { timeout: 120_000 }, async () => {
  const dir = await tempDir('gpr-doctor-ns-');
  const s = await startStack(dir);
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ listen: { http: new URL(s.httpUrl).host, https: `127.0.0.1:${s.httpsPort}`, admin: null }, upstream: s.backend, rewrite: 'internal', tls: { dir: join(dir, 'certs') } }));
  // Another CA, as an SSL_CERT_FILE that does not hold ours.
  const other = join(dir, 'other');
  await mkdir(other);
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=Some Other CA', '-keyout', join(other, 'key.pem'), '-out', join(other, 'ca.pem')]);
  const args = ['--config', config, '--module', MODULE, '--sla-ms', '2000', '--timeout-ms', '2000'];
  /** doctor inside the namespace; GOPROXY unset: the go command's default https://proxy.golang.org,direct. */
  async function nsDoctor(env: Record<string, string>): Promise<DoctorRun> {
    const r = await s.ns.exec(process.execPath, [MAIN_JS, 'doctor', '--json', ...args], { env: await doctorEnv(env), cwd: ROOT, timeoutMs: 60_000 });
    return parse(r.code, r.stdout, r.stderr);
  }

  const noRedirect = await nsDoctor({ SSL_CERT_FILE: s.caPem });
  expect(noRedirect.code).toBe(1);
  const n = byName(noRedirect);
  expect(n.interception).toMatchObject({ status: 'FAIL', fix: expect.stringContaining(`to the proxy's HTTPS port ${s.httpsPort}`) as string });
  for (const host of HOSTS) expect(n.interception!.detail).toContain(`${host}:443 connect ECONNREFUSED`);
  expect(n.fetch!.status).toBe('FAIL');
  expect(n.trust!.status).toBe('PASS');

  await s.ns.redirect(443, s.httpsPort);
  const healthy = await nsDoctor({ SSL_CERT_FILE: s.caPem });
  expect(statuses(healthy)).toEqual({ proxy: 'SKIP', listeners: 'SKIP', interception: 'PASS', trust: 'PASS', 'go-env': 'PASS', fetch: 'PASS', upstream: 'PASS', cache: 'SKIP' });
  expect(healthy.code).toBe(0);
  const h = byName(healthy);
  expect(h.interception!.detail).toContain(`${HOSTS.join(', ')} on port 443 land on the proxy`);
  expect(h.fetch!.detail).toContain('GET https://proxy.golang.org/example.com/lib/@v/list: 5 × 200');
  expect(h.trust!.detail).toBe(`SSL_CERT_FILE=${s.caPem} trusts the proxy's CA ${join(dir, 'certs', 'ca.pem')}`);
  expect(h.proxy!.detail).toContain('listen.admin is null');

  const untrusted = await nsDoctor({ SSL_CERT_FILE: join(other, 'ca.pem') });
  expect(untrusted.code).toBe(1);
  expect(byName(untrusted).trust).toMatchObject({
    status: 'FAIL',
    detail: `SSL_CERT_FILE=${join(other, 'ca.pem')} does not trust the proxy's CA ${join(dir, 'certs', 'ca.pem')}`,
    fix: expect.stringContaining('point SSL_CERT_FILE at') as string,
  });
  expect(byName(untrusted).interception!.status).toBe('PASS');
});

test('a backend slower than the SLA: fetch FAILs with its p50 and the advice; upstream PASSes with its latency', { timeout: 60_000 }, async () => {
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const dir = await tempDir('gpr-doctor-sla-');
  const proxyConfig = join(dir, 'proxy.json');
  // mutableTtlMs 0 and staleIfErrorMs 0: every list goes to the backend (no stale answer while it refreshes), so each sample pays its delay.
  await writeFile(proxyConfig, JSON.stringify({ listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' }, upstream: backend.url, rewrite: 'goproxy', cache: { mutableTtlMs: 0, staleIfErrorMs: 0, dir: null } }));
  const proxy = spawnProxy({ configPath: proxyConfig });
  const listening = await proxy.listening(2);
  const address = (role: string) => listening.find((l) => l.role === role)!.address;
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ listen: { http: address('http'), https: null, admin: address('admin') }, upstream: backend.url }));
  backend.setDelayMs(150);
  const slow = await doctor(['--config', config, '--module', MODULE, '--samples', '3', '--sla-ms', '100'], await doctorEnv({ GOPROXY: `http://127.0.0.1:${portOf(address('http'))}` }));
  expect(slow.code).toBe(1);
  const c = byName(slow);
  expect(c.fetch).toMatchObject({ status: 'FAIL', fix: expect.stringContaining('over the SLA') as string });
  const p50 = Number(/p50 ([\d.]+) ms/.exec(c.fetch!.detail)?.[1]);
  expect(p50).toBeGreaterThanOrEqual(150);
  expect(c.fetch!.detail).toContain('3 × 200');
  expect(c.fetch!.detail).toContain('SLA 100 ms');
  expect(backend.count('/example.com/lib/@v/list')).toBe(3);
  expect(c.upstream!.status).toBe('PASS');
  expect(Number(/up, ([\d.]+) ms/.exec(c.upstream!.detail)?.[1])).toBeGreaterThanOrEqual(150);
});
