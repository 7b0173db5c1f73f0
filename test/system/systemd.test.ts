// The units under a real systemd: Debian 12 (systemd 252) booted with
// `systemd-nspawn -b` (container.ts, root from build-root.sh), the built
// project and the host's node bind-mounted read-only at
// /opt/go-proxy-rewriter and /usr/bin/node, the units installed with
// systemd/install.sh as an operator would. Loopback only inside
// (--private-network); the backend is the fixture backend, run inside as a
// transient unit, and the load is test/helpers/request-loop.ts, run inside
// too (load-client.ts), bounded in count and time.
//
// Asserts, in order, on one booted container:
//   socket activation on the first connection; Type=notify (READY after the
//   listeners, STATUS=); `systemctl reload` under load with no failed request,
//   and failing when the config is rejected; journald priorities (-p err) and
//   the rate limit settings; DynamicUser state (CA key 0600) and cache
//   directories; `systemctl restart` under load with no failed request; the
//   watchdog restarting a SIGSTOPped proxy; the static-user recipe and the
//   nftables interception unit (redirects a Go proxy host, comes back with
//   its socket, removes its table on stop).
// Needs root, systemd-nspawn, debootstrap, nsenter (scripts/ensure-tools.sh):
// fails, never skips, without them. A cold root costs one debootstrap
// (about 2-3 minutes here), cached in /var/cache/go-proxy-rewriter-test.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fixturePaths } from '../helpers/fixture-paths.js';
import { bootContainer, buildRoot, requireHostTools, type Container } from './container.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP = '/opt/go-proxy-rewriter';
const CONFIG = '/etc/go-proxy-rewriter/config.json';
const SERVICE = 'go-proxy-rewriter.service';
const SOCKETS = ['go-proxy-rewriter-https.socket', 'go-proxy-rewriter-http.socket', 'go-proxy-rewriter-admin.socket'];
const STATE = '/var/lib/private/go-proxy-rewriter';
/** Addresses the Go proxy hosts resolve to inside (/etc/hosts); routed into lo, where nothing answers them. */
const GO_HOSTS = { 'proxy.golang.org': '198.18.0.10', 'sum.golang.org': '198.18.0.11' } as const;
/** One request path the fixture backend serves (a module's `list`). */
const PATH = fixturePaths().find((p) => p.mutable)!.path;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let c: Container;
let backend: string;
/** Durations worth reporting, printed when the suite ends. */
const timings: Record<string, number> = {};

/** `systemctl show -p ...` as an object. */
async function show(unit: string, ...props: string[]): Promise<Record<string, string>> {
  const out = await c.sh(`systemctl show ${props.map((p) => `-p ${p}`).join(' ')} ${unit}`);
  return Object.fromEntries(out.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}

/** Writes the config atomically (temp file + rename), as operators' tooling should. */
async function writeConfig(content: object | string): Promise<void> {
  const text = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
  const r = await c.run(`cat > ${CONFIG}.tmp && mv ${CONFIG}.tmp ${CONFIG}`, { input: text });
  expect(r.code).toBe(0);
}

function config(extra: object = {}): object {
  return {
    upstream: backend,
    rewrite: 'goproxy',
    cache: { mutableTtlMs: 0 },
    tls: { dir: '/var/lib/go-proxy-rewriter', hosts: Object.keys(GO_HOSTS) },
    ...extra,
  };
}

/** The proxy's journal lines (pino JSON) with their PRIORITY, oldest first. */
async function journal(unit = SERVICE): Promise<Array<{ priority: number; realtimeUs: number; message: string; json?: { level: number; msg: string; [k: string]: unknown } }>> {
  const out = await c.sh(`journalctl --no-pager -o json -u ${unit}`);
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const entry = JSON.parse(line) as { PRIORITY: string; __REALTIME_TIMESTAMP: string; MESSAGE: string | number[] };
      const message = typeof entry.MESSAGE === 'string' ? entry.MESSAGE : Buffer.from(entry.MESSAGE).toString();
      let json;
      if (message.startsWith('{"level":')) json = JSON.parse(message) as { level: number; msg: string };
      return { priority: Number(entry.PRIORITY), realtimeUs: Number(entry.__REALTIME_TIMESTAMP), message, json };
    });
}

/** Polls `check` every 200 ms until it returns true, up to `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(200);
  }
}

interface LoadSummary {
  attempts: number;
  requests: number;
  ok: number;
  retries: number;
  durationMs: number;
  stoppedBy: string;
  failures: unknown[];
}

/**
 * Starts the load inside (load-client.ts on the HTTP socket), resolves once
 * it is answered; `stop()` ends it and resolves with its summary. Bounded:
 * 90 s and 200 000 requests at most, whatever the test does.
 */
async function startLoad(): Promise<{ stop(): Promise<LoadSummary> }> {
  const child = c.spawn(`cd ${APP} && exec /usr/bin/node --import tsx test/system/load-client.ts http://127.0.0.1:80 ${backend} 90000 200000`);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  let gone = false;
  void exited.then(() => (gone = true));
  await until('the load to be answered', async () => {
    if (gone) throw new Error(`load client exited early: ${out}\n${err}`);
    return out.includes('{"ready":true}');
  }, 60_000);
  return {
    async stop() {
      child.stdin!.end('stop\n');
      const code = await Promise.race([exited, sleep(60_000).then(() => 'timeout')]);
      if (code !== 0) {
        child.kill('SIGKILL');
        throw new Error(`load client: ${code}\n${out}\n${err}`);
      }
      const last = out.trim().split('\n').pop()!;
      return JSON.parse(last) as LoadSummary;
    },
  };
}

/** `curl` inside: status and body. */
async function curl(args: string): Promise<{ code: number; status: number; body: string; stderr: string }> {
  const r = await c.run(`curl -sS -m 10 -o /tmp/curl.body -w '%{http_code}' ${args}; rc=$?; echo; cat /tmp/curl.body 2>/dev/null; rm -f /tmp/curl.body; exit $rc`);
  const newline = r.stdout.indexOf('\n');
  return { code: r.code, status: Number(r.stdout.slice(0, newline)), body: r.stdout.slice(newline + 1), stderr: r.stderr };
}

beforeAll(async () => {
  requireHostTools();
  if (!existsSync(join(ROOT, 'dist/src/main.js'))) throw new Error('dist/src/main.js is missing: run `npm run build` first');
  let t = Date.now();
  const { root, log } = await buildRoot(join(ROOT, 'test/system/build-root.sh'), 20 * 60_000);
  timings.rootMs = Date.now() - t;
  if (log) process.stderr.write(log);
  t = Date.now();
  c = await bootContainer({
    root,
    machine: `gpr-test-${process.pid}`,
    bindReadOnly: [
      [process.execPath, '/usr/bin/node'],
      [ROOT, APP],
    ],
  });
  timings.bootMs = Date.now() - t;
  try {
    await setUp();
  } catch (err) {
    // Not left running for afterAll to find, whatever vitest does after a failed beforeAll.
    await c.stop();
    throw err;
  }
}, 25 * 60_000);

/** Inside the booted container: node check, addresses, fixture backend, install.sh, config, sockets. */
async function setUp(): Promise<void> {
  // The host's node must run on the container's libraries (it links libstdc++).
  const node = await c.run('/usr/bin/node --version');
  if (node.stdout.trim() !== process.version) throw new Error(`${process.execPath} does not run inside the container (check \`ldd ${process.execPath}\` against build-root.sh's packages): ${node.stdout}${node.stderr}`);

  // The Go proxy hosts get addresses routed into lo: without interception a
  // connection to them goes nowhere (and times out). A non-loopback address
  // must exist for getaddrinfo's AI_ADDRCONFIG (getent ahostsv4) to answer.
  await c.sh(
    [
      'ip addr add 198.18.0.1/32 dev lo',
      'ip route add 198.18.0.0/24 dev lo',
      `printf '%s\\n' '127.0.0.1 localhost' ${Object.entries(GO_HOSTS).map(([h, a]) => `'${a} ${h}'`).join(' ')} > /etc/hosts`,
      `systemd-run --quiet --unit=gpr-fixture-backend --working-directory=${APP} /usr/bin/node --import tsx test/system/fixture-main.ts /run/gpr-backend.json`,
      'for i in $(seq 300); do [ -e /run/gpr-backend.json ] && break; sleep 0.1; done',
      'cat /run/gpr-backend.json',
    ].join(' && '),
  );
  backend = (JSON.parse(await c.sh('cat /run/gpr-backend.json')) as { url: string }).url;

  const install = await c.sh(`${APP}/systemd/install.sh`);
  expect(install).toContain('Installed.');
  await writeConfig(config());
  // Also= in the service enables the sockets; only the sockets are started.
  await c.sh(`systemctl enable ${SERVICE} 2>&1 && systemctl start ${SOCKETS.join(' ')}`);
}

afterAll(async () => {
  await c?.stop();
  process.stderr.write(`test/system timings (ms): ${JSON.stringify(timings)}\n`);
}, 60_000);

describe('under systemd 252 as PID 1', () => {
  test('socket activation: only the sockets run until the first connection starts the proxy', async () => {
    expect((await c.run(`systemctl is-active ${SERVICE}`)).stdout.trim()).toBe('inactive');
    expect((await c.sh(`systemctl is-active ${SOCKETS.join(' ')}`)).trim().split('\n')).toEqual(['active', 'active', 'active']);
    const direct = await curl(`${backend}${PATH}`);
    expect(direct.status).toBe(200);
    const t = Date.now();
    const proxied = await curl(`http://127.0.0.1:80${PATH}`);
    timings.firstRequestMs = Date.now() - t;
    expect(proxied).toMatchObject({ code: 0, status: 200, body: direct.body });
    expect((await c.run(`systemctl is-active ${SERVICE}`)).stdout.trim()).toBe('active');
    // The proxy adopted systemd's three sockets (fds 3..5, in the order
    // systemd chose), it bound nothing.
    const listening = (await journal()).filter((l) => l.json?.msg === 'listening');
    expect(listening.map((l) => l.json!.role).sort()).toEqual(['admin', 'http', 'https']);
    expect(listening.map((l) => l.json!.fd).sort()).toEqual([3, 4, 5]);
    expect(listening.map((l) => l.json!.address).sort()).toEqual(['127.0.0.1:9180', ':::443', ':::80']);
  }, 120_000);

  test('doctor under systemd: the listeners check finds the socket units active and accepting', async () => {
    const r = await c.run(`/usr/bin/node ${APP}/dist/src/main.js doctor --json --config ${CONFIG} --skip interception trust go-env fetch upstream`);
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; detail: string }> };
    const byName = Object.fromEntries(report.checks.map((check) => [check.name, check]));
    expect(byName.listeners, JSON.stringify(byName.listeners)).toMatchObject({ status: "PASS" });
    // The three socket units and the service, as systemctl show lists them.
    for (const unit of SOCKETS) expect(byName.listeners!.detail).toContain(unit);
    expect(byName.proxy).toMatchObject({ status: 'PASS' });
    expect({ code: r.code, ok: report.ok }).toEqual({ code: 0, ok: true });
  }, 60_000);

  test('Type=notify: systemd reports the start after the listeners, with the STATUS= line', async () => {
    const s = await show(SERVICE, 'Type', 'NotifyAccess', 'SubState', 'StatusText');
    expect(s).toMatchObject({ Type: 'notify', NotifyAccess: 'all', SubState: 'running' });
    expect(s.StatusText).toMatch(/^config generation 1; cache \d+ entries, \d+ bytes; hit ratio \d+\.\d%; last reload: none$/);
    // systemd logged "Started" (i.e. took READY=1) after the proxy had
    // logged its last listener. (Journal order alone proves nothing: journald
    // interleaves the stdout stream and PID 1's messages as it reads them.)
    const entries = await journal();
    const started = entries.filter((l) => l.message.startsWith('Started go-proxy-rewriter.service'));
    expect(started).toHaveLength(1);
    const lastListening = Math.max(...entries.filter((l) => l.json?.msg === 'listening').map((l) => Number(l.json!.time)));
    expect(started[0]!.realtimeUs / 1000).toBeGreaterThanOrEqual(lastListening);
  }, 60_000);

  test('systemctl reload under load: waits for each reload, fails on a rejected config, no request fails', async () => {
    const pid = (await show(SERVICE, 'MainPID')).MainPID;
    const load = await startLoad();
    const reloadMs: number[] = [];
    try {
      for (const generation of [2, 3, 4]) {
        await writeConfig(config({ cache: { mutableTtlMs: generation % 2 } }));
        const t = Date.now();
        const r = await c.run(`systemctl reload ${SERVICE}`);
        reloadMs.push(Date.now() - t);
        expect(r).toMatchObject({ code: 0, stderr: '' });
        // Returned after the reload happened, not when a signal was sent.
        expect((await show(SERVICE, 'StatusText')).StatusText).toMatch(new RegExp(`^config generation ${generation};.*last reload: ok \\(generation ${generation}\\)$`));
      }
      await writeConfig(config({ cache: { maxBytes: -1 } }));
      const bad = await c.run(`systemctl reload ${SERVICE}`);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain(`Job for ${SERVICE} failed`);
      const s = await show(SERVICE, 'StatusText', 'ActiveState', 'MainPID');
      expect(s).toMatchObject({ ActiveState: 'active', MainPID: pid });
      expect(s.StatusText).toMatch(/^config generation 4;.*last reload: failed: GPR_ERR_CONFIG_INVALID$/);
      // The reason is in the journal, from the CLI that ExecReload= ran.
      const cli = (await journal()).find((l) => l.message.includes('GPR_ERR_RELOAD: reload through http://127.0.0.1:9180 failed: 500 GPR_ERR_CONFIG_INVALID'));
      expect(cli).toBeDefined();
      await writeConfig(config());
      expect((await c.run(`systemctl reload ${SERVICE}`)).code).toBe(0);
      expect((await show(SERVICE, 'StatusText')).StatusText).toMatch(/^config generation 5;/);
    } finally {
      const summary = await load.stop();
      timings.reloadLoadRequests = summary.requests;
      expect(summary.failures).toEqual([]);
      expect(summary.ok).toBeGreaterThan(100);
      expect(summary.stoppedBy).toBe('stdin');
    }
    timings.reloadMaxMs = Math.max(...reloadMs);
    expect((await show(SERVICE, 'MainPID')).MainPID).toBe(pid);
  }, 180_000);

  test('journald: each line at its pino level\'s priority; -p err shows the errors; the rate limit is the unit\'s', async () => {
    const lines = (await journal()).filter((l) => l.json);
    const want = (level: number) => (level >= 60 ? 2 : level >= 50 ? 3 : level >= 40 ? 4 : level >= 30 ? 6 : 7);
    expect(lines.filter((l) => l.priority !== want(l.json!.level)).map((l) => [l.priority, l.message])).toEqual([]);
    expect(lines.some((l) => l.json!.level === 30)).toBe(true);
    const errors = await c.sh(`journalctl --no-pager -o cat -u ${SERVICE} -p err`);
    const errorLines = errors.split('\n').filter((l) => l.startsWith('{'));
    expect(errorLines.length).toBeGreaterThan(0);
    expect(errorLines.every((l) => (JSON.parse(l) as { level: number }).level >= 50)).toBe(true);
    expect(errorLines.some((l) => (JSON.parse(l) as { msg: string }).msg === 'config reload failed')).toBe(true);
    // Nothing came with the prefix still on (journald strips what it reads).
    expect(lines.filter((l) => /^<\d>/.test(l.message))).toEqual([]);
    // Every request of the reload test's load has its access line: journald
    // dropped none (it would log "Suppressed N messages from ...").
    expect(lines.filter((l) => l.json!.msg === 'request').length).toBeGreaterThanOrEqual(timings.reloadLoadRequests!);
    expect((await c.run('journalctl --no-pager -o cat | grep -c Suppressed')).stdout.trim()).toBe('0');
    expect(await show(SERVICE, 'SyslogLevelPrefix', 'LogRateLimitIntervalUSec', 'LogRateLimitBurst')).toEqual({
      SyslogLevelPrefix: 'yes',
      LogRateLimitIntervalUSec: '1s',
      LogRateLimitBurst: '5000',
    });
  }, 60_000);

  test('DynamicUser: the CA key is 0600 under the StateDirectory, owned by the dynamic user; CacheDirectory is set', async () => {
    const pid = (await show(SERVICE, 'MainPID')).MainPID;
    const uid = Number(/^Uid:\s+(\d+)/m.exec(await c.sh(`cat /proc/${pid}/status`))![1]);
    // systemd's dynamic range (DynamicUser=, 61184-65519), and resolvable while it runs.
    expect(uid).toBeGreaterThanOrEqual(61184);
    expect(uid).toBeLessThanOrEqual(65519);
    expect((await c.sh(`getent passwd ${uid}`)).split(':')[0]).toBe('go-proxy-rewriter');
    expect((await c.sh('readlink /var/lib/go-proxy-rewriter')).trim()).toBe('private/go-proxy-rewriter');
    const stat = await c.sh(`stat -c '%n %a %u' ${STATE} ${STATE}/ca-key.pem /var/cache/private/go-proxy-rewriter`);
    expect(stat.trim().split('\n')).toEqual([`${STATE} 700 ${uid}`, `${STATE}/ca-key.pem 600 ${uid}`, `/var/cache/private/go-proxy-rewriter 700 ${uid}`]);
    const env = (await c.sh(`tr '\\0' '\\n' < /proc/${pid}/environ`)).split('\n');
    expect(env).toContain('CACHE_DIRECTORY=/var/cache/go-proxy-rewriter');
    // The disk tier took it as its default (cache.dir unset) and could write there under ProtectSystem=strict.
    const cacheLines = (await journal()).filter((l) => l.json?.msg?.startsWith('cache index'));
    expect(cacheLines.length).toBeGreaterThan(0);
    expect(cacheLines.every((l) => l.json!.msg === 'cache indexed' && l.json!.dir === '/var/cache/go-proxy-rewriter')).toBe(true);
    expect(env).toContain('STATE_DIRECTORY=/var/lib/go-proxy-rewriter');
    // The journal stream the proxy detected (log.format auto).
    expect(env.some((e) => /^JOURNAL_STREAM=\d+:\d+$/.test(e))).toBe(true);
  }, 60_000);

  test('systemctl restart while systemd holds the sockets loses no request', async () => {
    const before = (await show(SERVICE, 'MainPID')).MainPID;
    const load = await startLoad();
    let summary: LoadSummary;
    try {
      const t = Date.now();
      expect(await c.run(`systemctl restart ${SERVICE}`)).toMatchObject({ code: 0, stderr: '' });
      timings.restartMs = Date.now() - t;
      await sleep(1000);
    } finally {
      summary = await load.stop();
    }
    timings.restartLoadRequests = summary.requests;
    expect(summary.failures).toEqual([]);
    expect(summary.ok).toBeGreaterThan(100);
    const after = await show(SERVICE, 'MainPID', 'ActiveState');
    expect(after.ActiveState).toBe('active');
    expect(after.MainPID).not.toBe(before);
    // Both processes answered: the old one drained, the new one served.
    const pids = new Set((await journal()).filter((l) => l.json?.msg === 'request').map((l) => String(l.json!.pid)));
    expect(pids.has(before!) && pids.has(after.MainPID!)).toBe(true);
  }, 180_000);

  test('watchdog: a frozen (SIGSTOPped) proxy is killed and started again', async () => {
    const dropIn = `/run/systemd/system/${SERVICE}.d`;
    // A short watchdog for the test (the unit has 30 s), no core file.
    await c.sh(`mkdir -p ${dropIn} && printf '[Service]\\nWatchdogSec=2s\\nLimitCORE=0\\n' > ${dropIn}/zz-test-watchdog.conf && systemctl daemon-reload && systemctl restart ${SERVICE}`);
    try {
      const s = await show(SERVICE, 'MainPID', 'NRestarts', 'WatchdogUSec');
      expect(s.WatchdogUSec).toBe('2s');
      await c.sh(`kill -STOP ${s.MainPID}`);
      const t = Date.now();
      await until(
        'a new main process',
        async () => {
          const now = await show(SERVICE, 'MainPID', 'ActiveState', 'SubState');
          return now.MainPID !== s.MainPID && now.MainPID !== '0' && now.SubState === 'running';
        },
        30_000,
      );
      timings.watchdogRestartMs = Date.now() - t;
      expect(Number((await show(SERVICE, 'NRestarts')).NRestarts)).toBe(Number(s.NRestarts) + 1);
      expect((await journal()).some((l) => l.message.includes('Watchdog timeout'))).toBe(true);
      expect(await curl(`http://127.0.0.1:80${PATH}`)).toMatchObject({ code: 0, status: 200 });
    } finally {
      await c.sh(`rm -rf ${dropIn} && systemctl daemon-reload && systemctl restart ${SERVICE}`);
    }
  }, 120_000);

  test('static user + nftables interception: redirects a Go proxy host, comes back with its socket, removes its table on stop', async () => {
    const { 'proxy.golang.org': proxyAddr } = GO_HOSTS;
    // Before: nothing intercepts; the address goes nowhere.
    expect((await curl(`--connect-timeout 2 https://proxy.golang.org${PATH}`)).code).toBe(28);

    // The static-user recipe (systemd/README.md). The directory does not
    // exist on Debian 12, and systemd-sysusers creates nothing while the
    // dynamic user of the running service holds the name: stop it first.
    expect((await c.run('test -d /etc/sysusers.d')).code).not.toBe(0);
    await c.sh(`mkdir -p /etc/sysusers.d && cp /usr/local/lib/go-proxy-rewriter/go-proxy-rewriter.sysusers /etc/sysusers.d/go-proxy-rewriter.conf`);
    await c.sh('systemd-sysusers /etc/sysusers.d/go-proxy-rewriter.conf');
    expect((await c.run('grep -c ^go-proxy-rewriter: /etc/passwd')).stdout.trim()).toBe('0');
    await c.sh(`systemctl stop ${SERVICE} && systemd-sysusers /etc/sysusers.d/go-proxy-rewriter.conf`);
    const uid = Number((await c.sh('grep ^go-proxy-rewriter: /etc/passwd')).split(':')[2]);
    expect(uid).toBeLessThan(1000);

    await c.sh('systemctl enable --now go-proxy-rewriter-intercept.service');
    const table = await c.sh('nft list table inet go_proxy_rewriter');
    expect(table).toContain(proxyAddr);
    expect(table).toMatch(new RegExp(`bypass_uids \\{[^}]*elements = \\{ ${uid} \\}`));

    const ca = `${STATE}/ca.pem`;
    const direct = await curl(`${backend}${PATH}`);
    const redirected = await curl(`--cacert ${ca} https://proxy.golang.org${PATH}`);
    expect(redirected).toMatchObject({ code: 0, status: 200, body: direct.body });
    // The connection woke the proxy through the HTTPS socket, as the static user now.
    const pid = (await show(SERVICE, 'MainPID')).MainPID;
    expect(Number(/^Uid:\s+(\d+)/m.exec(await c.sh(`cat /proc/${pid}/status`))![1])).toBe(uid);
    const access = (await journal()).filter((l) => l.json?.msg === 'request' && l.json.host === 'proxy.golang.org' && l.json.path === PATH);
    expect(access.length).toBeGreaterThan(0);

    // The socket stopped and started again (BindsTo= stops the unit; its
    // WantedBy= the socket starts it again), and restarted.
    await c.sh('systemctl stop go-proxy-rewriter-https.socket');
    expect((await c.run('systemctl is-active go-proxy-rewriter-intercept.service')).stdout.trim()).toBe('inactive');
    expect((await c.run('nft list table inet go_proxy_rewriter')).code).not.toBe(0);
    await c.sh(`systemctl start go-proxy-rewriter-https.socket ${SERVICE}`);
    await until('the interception to be back', async () => (await c.run('systemctl is-active go-proxy-rewriter-intercept.service')).stdout.trim() === 'active', 20_000);
    expect(await curl(`--cacert ${ca} https://sum.golang.org/lookup/example.com/lib@v1.0.0`)).toMatchObject({ code: 0 });
    await c.sh('systemctl restart go-proxy-rewriter-https.socket');
    await until('the interception to be back after a restart', async () => (await c.run('systemctl is-active go-proxy-rewriter-intercept.service')).stdout.trim() === 'active', 20_000);
    expect(await curl(`--cacert ${ca} https://proxy.golang.org${PATH}`)).toMatchObject({ code: 0, status: 200, body: direct.body });

    await c.sh('systemctl stop go-proxy-rewriter-intercept.service');
    expect((await c.run('nft list table inet go_proxy_rewriter')).code).not.toBe(0);
    expect((await c.sh('nft list tables')).trim()).toBe('');
    expect((await curl(`--connect-timeout 2 --cacert ${ca} https://proxy.golang.org${PATH}`)).code).toBe(28);
  }, 180_000);
});
