/**
 * @module doctor/checks
 * The checks of `go-proxy-rewriter doctor`, in the order they run: each one
 * looks at one link of the chain from the go command to the backend, from
 * where doctor runs, and returns PASS, FAIL or SKIP (the check does not apply
 * here, with the reason) with a detail and, for a FAIL, the fix. They only
 * observe: no check changes the system, the config or the proxy.
 * Must not: print or exit (src/cli/doctor.ts does), or start a server.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import type { Config } from '../config/schema.js';

export type CheckStatus = 'PASS' | 'FAIL' | 'SKIP';

/** One check's verdict; `fix` is empty unless the status is FAIL. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  fix: string;
  durationMs: number;
}

/** What the checks know about where they run. */
export interface DoctorContext {
  config: Config;
  /** The environment the go command would get (GOPROXY, SSL_CERT_FILE, PATH, ...). */
  env: NodeJS.ProcessEnv;
  /** Base URL of the admin listener; default from listen.admin. */
  adminUrl?: string;
  /** Base URL the fetch check asks; default GOPROXY's first entry, else listen.http. */
  proxyUrl?: string;
  /** Module whose `@v/list` the fetch check asks for. */
  module: string;
  /** Fetches timed by the fetch check; the p50 is compared with `slaMs`. */
  samples: number;
  slaMs: number;
  /** Per network operation, in ms. */
  timeoutMs: number;
  /** Names of checks to report as SKIP. */
  skip: readonly string[];
  /** GOPROXY as `go env` reports it (set by the go-env check; includes `go env -w` settings). */
  goproxy?: string;
}

type Verdict = Omit<CheckResult, 'name' | 'durationMs'>;
const pass = (detail: string): Verdict => ({ status: 'PASS', detail, fix: '' });
const fail = (detail: string, fix: string): Verdict => ({ status: 'FAIL', detail, fix });
const skip = (detail: string): Verdict => ({ status: 'SKIP', detail, fix: '' });

/**
 * The proxy's units of systemd/, in the order the listeners check reports
 * them. go-proxy-rewriter-intercept.service is optional (DNS or the chart can
 * redirect instead): the interception check proves the redirect end to end.
 */
export const UNITS = ['go-proxy-rewriter.service', 'go-proxy-rewriter-http.socket', 'go-proxy-rewriter-https.socket', 'go-proxy-rewriter-admin.socket'];

// ---------------------------------------------------------------- helpers

/** "host:port" of a listen address, as a client on this host dials it (wildcards become loopback). */
export function dialAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(address);
  if (!m) throw new Error(`not an address: ${address}`);
  let host = m[1] ?? m[2] ?? '';
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return { host, port: Number(m[3]) };
}

function urlOf(scheme: 'http' | 'https', address: string): string {
  const { host, port } = dialAddress(address);
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The configured backends as `{name, url}`. Reads `config.upstream` loosely,
 * so it works with each shape it has had: one URL, a GOPROXY-style list
 * ("http://a,http://b|http://c"), a list of entries with `url`; plus the
 * upstreams of `private` rules when there are any.
 */
export function upstreamsOf(config: Config): Array<{ name: string; url: string }> {
  const out: Array<{ name: string; url: string }> = [];
  const add = (setting: unknown, label: (i: number) => string): void => {
    const list: unknown[] = Array.isArray(setting) ? setting : typeof setting === 'string' ? goproxyEntries(setting) : [];
    list.forEach((entry, i) => {
      if (typeof entry === 'string') out.push({ name: label(i), url: entry });
      else if (typeof entry === 'object' && entry !== null && typeof (entry as { url?: unknown }).url === 'string') {
        const e = entry as { url: string; name?: unknown };
        out.push({ name: typeof e.name === 'string' ? e.name : label(i), url: e.url });
      }
    });
  };
  add((config as { upstream?: unknown }).upstream, (i) => `upstream ${i + 1}`);
  const rules: unknown = (config as { private?: unknown }).private;
  if (Array.isArray(rules)) {
    for (const rule of rules as Array<{ match?: unknown; upstream?: unknown }>) {
      const match = Array.isArray(rule.match) ? rule.match.join(',') : String(rule.match);
      add(rule.upstream, (i) => `private ${match} ${i + 1}`);
    }
  }
  return out;
}

interface HttpAnswer {
  status: number;
  body: string;
  ms: number;
}

/** One GET; rejects with the network error (code ECONN..., or TIMEOUT). */
function httpGet(url: string, timeoutMs: number, ca?: string[]): Promise<HttpAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const secure = url.startsWith('https:');
    const options = { agent: false as const, headers: { 'user-agent': 'go-proxy-rewriter-doctor' }, ...(secure && ca ? { ca } : {}) };
    const req = (secure ? https : http).get(url, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 64 * 1024) chunks.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })));
    req.on('error', reject);
  });
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!e.code || e.message.includes(e.code)) return e.message;
  return `${e.code} (${e.message})`;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** The program is not installed. */
  missing: boolean;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, stdout, stderr, missing: e?.code === 'ENOENT' });
    });
  });
}

/** systemd is PID 1 (sd_booted(3): /run/systemd/system exists). */
function underSystemd(): boolean {
  return existsSync('/run/systemd/system');
}

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parsePems(text: string): X509Certificate[] {
  const certs: X509Certificate[] = [];
  for (const pem of text.match(PEM_RE) ?? []) {
    try {
      certs.push(new X509Certificate(pem));
    } catch {
      // a broken entry in a bundle: the TLS stack skips it as well
    }
  }
  return certs;
}

/** The certificates clients must trust: our CA (tls.ca, or ca.pem in tls.dir), or the static leaf file's. */
async function ourTrust(config: Config): Promise<{ path: string; certs: X509Certificate[] }> {
  const path = config.tls.cert ?? config.tls.ca?.cert ?? join(config.tls.dir, 'ca.pem');
  const certs = parsePems(await readFile(path, 'utf8'));
  if (certs.length === 0) throw Object.assign(new Error(`${path} holds no certificate`), { code: 'NO_CERT' });
  return { path, certs };
}

/** True when `cert` is one of `anchors`, or one of them signed it. */
function anchoredBy(cert: X509Certificate, anchors: readonly X509Certificate[]): boolean {
  return anchors.some((a) => a.fingerprint256 === cert.fingerprint256 || (cert.checkIssued(a) && cert.verify(a.publicKey)));
}

/** The trust store the go command uses on Linux (crypto/x509 root_linux.go): SSL_CERT_FILE/SSL_CERT_DIR, else the first system bundle and the system dirs. */
const SYSTEM_FILES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/ca-bundle.pem', '/etc/pki/tls/cacert.pem', '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', '/etc/ssl/cert.pem'];
const SYSTEM_DIRS = ['/etc/ssl/certs', '/etc/pki/tls/certs'];

async function loadStore(files: readonly string[], dirs: readonly string[], firstFileOnly: boolean): Promise<{ certs: X509Certificate[]; read: string[] }> {
  const certs: X509Certificate[] = [];
  const read: string[] = [];
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    certs.push(...parsePems(text));
    read.push(f);
    if (firstFileOnly) break;
  }
  for (const d of dirs) {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const n of names) {
      const text = await readFile(join(d, n), 'utf8').catch(() => undefined);
      if (text !== undefined) certs.push(...parsePems(text));
    }
    if (names.length) read.push(`${d}/`);
  }
  return { certs, read };
}

/** GOPROXY's entries, as the go command splits them (`,` and `|`). */
export function goproxyEntries(value: string): string[] {
  return value
    .split(/[,|]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- checks

function adminUrl(ctx: DoctorContext): string | undefined {
  if (ctx.adminUrl) return ctx.adminUrl.replace(/\/$/, '');
  return ctx.config.listen.admin === null ? undefined : urlOf('http', ctx.config.listen.admin);
}

async function checkProxy(ctx: DoctorContext): Promise<Verdict> {
  const base = adminUrl(ctx);
  if (!base) return skip('listen.admin is null: no admin listener to ask (pass --admin-url if it runs elsewhere)');
  try {
    const got = await httpGet(`${base}/readyz`, ctx.timeoutMs);
    if (got.status === 200) return pass(`${base}/readyz answered 200 in ${got.ms.toFixed(0)} ms`);
    return fail(`${base}/readyz answered ${got.status} ${got.body.trim()}`, got.status === 503 ? 'the proxy is draining (stopping or restarting): wait, then check `journalctl -u go-proxy-rewriter`' : 'this is not the proxy\'s admin listener: check listen.admin or --admin-url');
  } catch (err) {
    return fail(`${base}/readyz: ${errText(err)}`, 'start the proxy (`systemctl start go-proxy-rewriter.service`, or the DaemonSet pod) and check its log; or point --admin-url / --config at where it runs');
  }
}

async function checkListeners(ctx: DoctorContext): Promise<Verdict> {
  if (!underSystemd()) return skip('not under systemd (no /run/systemd/system): the proxy runs another way (container, foreground)');
  const shown = await run('systemctl', ['show', '--property=Id,LoadState,ActiveState,Listen', ...UNITS], ctx.env, ctx.timeoutMs);
  if (shown.missing) return skip('no systemctl command');
  // One block per unit, separated by a blank line.
  const units = shown.stdout
    .trim()
    .split(/\n\s*\n/)
    .map((block) => Object.fromEntries(block.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) as Record<string, string>);
  const loaded = units.filter((u) => u.LoadState === 'loaded');
  if (loaded.length === 0) return skip(`none of ${UNITS.join(', ')} is installed`);
  // Socket-activated, the service is inactive until the first connection: only
  // its sockets must be active then. Without socket units it must run itself.
  const socketActivated = loaded.some((u) => u.Id?.endsWith('.socket'));
  const inactive = loaded.filter((u) => u.ActiveState !== 'active' && !(socketActivated && u.Id?.endsWith('.service') && u.ActiveState === 'inactive'));
  const notListening: string[] = [];
  for (const u of loaded) {
    for (const listen of (u.Listen ?? '').split(/\s(?=\S+ \(Stream\))/).filter(Boolean)) {
      const address = listen.replace(/\s*\(Stream\)\s*$/, '');
      if (!/^\S*:\d+$|^\d+$/.test(address)) continue;
      const { host, port } = dialAddress(/^\d+$/.test(address) ? `:${address}` : address);
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host, port, timeout: ctx.timeoutMs }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
        s.on('timeout', () => {
          s.destroy();
          resolve(false);
        });
      });
      if (!ok) notListening.push(`${u.Id} ${address}`);
    }
  }
  if (inactive.length || notListening.length) {
    return fail(
      [inactive.length ? `not active: ${inactive.map((u) => `${u.Id} (${u.ActiveState})`).join(', ')}` : '', notListening.length ? `not accepting: ${notListening.join(', ')}` : ''].filter(Boolean).join('; '),
      `systemctl start ${inactive.map((u) => u.Id).join(' ') || 'go-proxy-rewriter.service'}; then \`systemctl status\` and \`journalctl -u go-proxy-rewriter\` tell why it stopped`,
    );
  }
  const waiting = loaded.filter((u) => u.ActiveState !== 'active').map((u) => u.Id);
  const active = loaded.filter((u) => u.ActiveState === 'active').map((u) => u.Id);
  return pass(`${active.join(', ')} active and listening${waiting.length ? `; ${waiting.join(', ')} inactive until the first connection (socket activation)` : ''}`);
}

/** The peer certificate a TLS connection to `host:443` gets, resolving and routing as the go command would. */
function peerCertificate(host: string, timeoutMs: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port: 443, servername: host, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], timeout: timeoutMs }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(Object.assign(new Error('no certificate'), { code: 'NO_CERT' }));
    });
    socket.on('timeout', () => socket.destroy(Object.assign(new Error(`no handshake within ${timeoutMs} ms`), { code: 'TIMEOUT' })));
    socket.on('error', reject);
  });
}

async function checkInterception(ctx: DoctorContext): Promise<Verdict> {
  if (ctx.config.listen.https === null) return skip('listen.https is null: no HTTPS listener, so no interception is configured (clients set GOPROXY)');
  let ours: { path: string; certs: X509Certificate[] };
  try {
    ours = await ourTrust(ctx.config);
  } catch (err) {
    return fail(`cannot read the proxy's CA: ${errText(err)}`, 'run `go-proxy-rewriter certs init` (or fix tls.ca / tls.dir), or pass the proxy\'s --config');
  }
  const problems: string[] = [];
  for (const host of ctx.config.tls.hosts) {
    try {
      const cert = await peerCertificate(host, ctx.timeoutMs);
      if (!anchoredBy(cert, ours.certs) && !ours.certs.some((c) => c.fingerprint256 === cert.fingerprint256)) problems.push(`${host}:443 is served by "${cert.issuer.replace(/\n/g, ', ')}", not our CA`);
    } catch (err) {
      problems.push(`${host}:443 ${errText(err)}`);
    }
  }
  if (problems.length) {
    return fail(
      problems.join('; '),
      `redirect port 443 of the Go proxy hosts to the proxy's HTTPS port ${dialAddress(ctx.config.listen.https).port}: \`systemctl start go-proxy-rewriter-intercept.service\` (systemd/intercept.nft) or the chart's init container; the proxy's own uid must be exempt`,
    );
  }
  return pass(`${ctx.config.tls.hosts.join(', ')} on port 443 land on the proxy (certificates from ${ours.path})`);
}

async function checkTrust(ctx: DoctorContext): Promise<Verdict> {
  if (ctx.config.listen.https === null) return skip('listen.https is null: no HTTPS listener, nothing to trust');
  let ours: { path: string; certs: X509Certificate[] };
  try {
    ours = await ourTrust(ctx.config);
  } catch (err) {
    return fail(`cannot read the proxy's CA: ${errText(err)}`, 'run `go-proxy-rewriter certs init` (or fix tls.ca / tls.dir), or pass the proxy\'s --config');
  }
  const trusted = (store: X509Certificate[]) => ours.certs.some((c) => anchoredBy(c, store));
  const file = ctx.env.SSL_CERT_FILE;
  const dirs = (ctx.env.SSL_CERT_DIR ?? '').split(':').filter(Boolean);
  if (file || dirs.length) {
    // The go command then reads these instead of the system locations.
    const store = await loadStore(file ? [file] : [], dirs.length ? dirs : SYSTEM_DIRS, false);
    const where = [file ? `SSL_CERT_FILE=${file}` : '', dirs.length ? `SSL_CERT_DIR=${dirs.join(':')}` : ''].filter(Boolean).join(' ');
    if (file && !store.read.includes(file)) return fail(`${where}: cannot read it`, `point SSL_CERT_FILE at the proxy's CA (${ours.path}) or a bundle that contains it`);
    if (!trusted(store.certs)) return fail(`${where} does not trust the proxy's CA ${ours.path}`, `point SSL_CERT_FILE at ${ours.path} or append it: go-proxy-rewriter certs export >> ${file ?? 'FILE'}`);
    return pass(`${where} trusts the proxy's CA ${ours.path}`);
  }
  const store = await loadStore(SYSTEM_FILES, SYSTEM_DIRS, true);
  if (!trusted(store.certs)) {
    return fail(
      `the system trust store (${store.read.join(', ') || 'none found'}) does not trust the proxy's CA ${ours.path}`,
      'go-proxy-rewriter certs export > /usr/local/share/ca-certificates/go-proxy-rewriter.crt && update-ca-certificates (or set SSL_CERT_FILE for the build)',
    );
  }
  return pass(`the system trust store (${store.read.join(', ')}) trusts the proxy's CA ${ours.path}`);
}

/** The go command's settings that decide whether it uses the proxy. */
export interface GoEnv {
  GOPROXY: string;
  GOSUMDB: string;
  GONOSUMDB: string;
  GOPRIVATE: string;
  GONOPROXY: string;
  GOFLAGS: string;
}

/** What `go env` implies for the proxy (pure): a verdict for GOPROXY, GOSUMDB and the private patterns. */
export function judgeGoEnv(env: GoEnv, proxy: { urls: readonly string[]; interceptedHosts: readonly string[] }): Verdict {
  const entries = goproxyEntries(env.GOPROXY);
  const first = entries[0] ?? 'off';
  const notes: string[] = [`GOPROXY=${env.GOPROXY}`, `GOSUMDB=${env.GOSUMDB}`];
  if (env.GONOSUMDB) notes.push(`GONOSUMDB=${env.GONOSUMDB}`);
  if (env.GOPRIVATE) notes.push(`GOPRIVATE=${env.GOPRIVATE} (these modules skip the proxy)`);
  if (env.GONOPROXY && env.GONOPROXY !== env.GOPRIVATE) notes.push(`GONOPROXY=${env.GONOPROXY} (these modules skip the proxy)`);
  if (env.GOFLAGS) notes.push(`GOFLAGS=${env.GOFLAGS}`);
  const proxyHint = proxy.urls[0] ? `go env -w GOPROXY=${proxy.urls[0]}` : 'set GOPROXY to the proxy';
  if (first === 'direct' || first === 'off') {
    return fail(`${notes.join(' ')}: GOPROXY=${first} ${first === 'direct' ? 'bypasses the proxy: modules come straight from their origins' : 'turns module downloads off'}`, `${proxyHint}${proxy.interceptedHosts.length ? ' (or unset GOPROXY: its default https://proxy.golang.org is intercepted)' : ''}`);
  }
  if (env.GOSUMDB === 'off') return fail(`${notes.join(' ')}: GOSUMDB=off turns checksum verification off`, 'go env -u GOSUMDB (the proxy serves sum.golang.org too); list private modules in GONOSUMDB or GOPRIVATE instead');
  if (/(^|,)\*(,|$)/.test(env.GOPRIVATE) || /(^|,)\*(,|$)/.test(env.GONOPROXY)) return fail(`${notes.join(' ')}: a bare * sends every module around the proxy`, 'list only private module prefixes in GOPRIVATE / GONOPROXY');
  const host = hostOf(first);
  const ours = proxy.urls.some((u) => hostOf(u) === host && new URL(u).port === new URL(first).port) || (host !== undefined && proxy.interceptedHosts.includes(host));
  if (entries.includes('direct')) notes.push("falls back to direct when the proxy answers 404 or 410 (onUpstreamFailure \"notfound\" turns backend failures into 404)");
  return pass(`${notes.join(' ')}${ours ? '' : `; ${first} is not one of the proxy's addresses this config names: make sure it reaches the proxy`}`);
}

async function checkGoEnv(ctx: DoctorContext): Promise<Verdict> {
  const got = await run('go', ['env', '-json', 'GOPROXY', 'GOSUMDB', 'GONOSUMDB', 'GOPRIVATE', 'GONOPROXY', 'GOFLAGS'], ctx.env, Math.max(ctx.timeoutMs, 10_000));
  if (got.missing) return skip('no go command on PATH');
  if (got.code !== 0) return fail(`go env failed: ${got.stderr.trim()}`, 'fix the go installation or its environment (GOENV, GOFLAGS)');
  const env = JSON.parse(got.stdout) as GoEnv;
  ctx.goproxy = env.GOPROXY;
  return judgeGoEnv(env, { urls: proxyUrls(ctx), interceptedHosts: ctx.config.listen.https === null ? [] : ctx.config.tls.hosts });
}

function proxyUrls(ctx: DoctorContext): string[] {
  const urls: string[] = [];
  if (ctx.proxyUrl) urls.push(ctx.proxyUrl.replace(/\/$/, ''));
  if (ctx.config.listen.http !== null) urls.push(urlOf('http', ctx.config.listen.http));
  return urls;
}

/**
 * The URL the fetch check asks: --proxy-url; else where the go command goes,
 * GOPROXY's first entry (an intercepted host goes through DNS, the redirect
 * and TLS with our CA, like the go command); else listen.http.
 */
function fetchBase(ctx: DoctorContext): string | undefined {
  if (ctx.proxyUrl) return ctx.proxyUrl.replace(/\/$/, '');
  // Unset GOPROXY is the go command's default, unless interception is skipped (the central Deployment: clients set GOPROXY).
  if (ctx.env.GOPROXY === undefined && ctx.skip.includes('interception')) return proxyUrls(ctx)[0];
  const first = goproxyEntries(ctx.goproxy ?? ctx.env.GOPROXY ?? 'https://proxy.golang.org')[0];
  const intercepted = (url: string) => ctx.config.tls.hosts.includes(hostOf(url) ?? '');
  if (first && /^https?:\/\//.test(first) && (ctx.config.listen.https !== null || !intercepted(first))) return first.replace(/\/$/, '');
  return proxyUrls(ctx)[0];
}

/** The go command's case encoding of a module path (`A` -> `!a`). */
function escapeModule(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

async function checkFetch(ctx: DoctorContext): Promise<Verdict> {
  const base = fetchBase(ctx);
  if (!base) return skip('no plain HTTP listener and no --proxy-url: nothing to fetch through');
  const ca = base.startsWith('https:') ? await ourTrust(ctx.config).then((t) => [...tls.rootCertificates, ...t.certs.map((c) => c.toString())], () => undefined) : undefined;
  const url = `${base}/${escapeModule(ctx.module)}/@v/list`;
  const times: number[] = [];
  for (let i = 0; i < ctx.samples; i++) {
    let got: HttpAnswer;
    try {
      got = await httpGet(url, Math.max(ctx.timeoutMs, ctx.slaMs * 4), ca);
    } catch (err) {
      return fail(`GET ${url}: ${errText(err)}`, 'the proxy does not answer there: see the proxy and interception checks above');
    }
    if (got.status !== 200) {
      const firstLine = got.body.split('\n')[0]?.slice(0, 200) ?? '';
      return fail(
        `GET ${url} answered ${got.status}${firstLine ? `: ${firstLine}` : ''}`,
        got.status === 404 || got.status === 410 ? `the backend has no ${ctx.module} (choose one it has with --module), or it failed and onUpstreamFailure "notfound" turned that into 404: see the upstream check` : 'see the upstream check and the proxy\'s access log (the err field names the cause)',
      );
    }
    times.push(got.ms);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const p50 = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  const detail = `GET ${url}: ${ctx.samples} × 200, p50 ${p50.toFixed(1)} ms (first ${times[0]?.toFixed(1)} ms, max ${sorted[sorted.length - 1]?.toFixed(1)} ms), SLA ${ctx.slaMs} ms`;
  if (p50 > ctx.slaMs) return fail(detail, 'over the SLA: see the upstream latency below, the cache hit ratio (gpr_requests_total), and the host\'s load');
  return pass(detail);
}

async function checkUpstreams(ctx: DoctorContext): Promise<Verdict> {
  const upstreams = upstreamsOf(ctx.config);
  if (upstreams.length === 0) return skip('no upstream configured');
  const results: string[] = [];
  const down: string[] = [];
  for (const u of upstreams) {
    const times: number[] = [];
    let problem: string | undefined;
    for (let i = 0; i < 3 && problem === undefined; i++) {
      try {
        // Any answer below 500 means the backend is up: its root need not be a proxy path.
        const got = await httpGet(u.url, ctx.timeoutMs);
        if (got.status >= 500) problem = `answered ${got.status}`;
        else times.push(got.ms);
      } catch (err) {
        problem = errText(err);
      }
    }
    if (problem !== undefined) down.push(`${u.name} ${u.url}: ${problem}`);
    else results.push(`${u.name} ${u.url}: up, ${[...times].sort((a, b) => a - b)[1]?.toFixed(1)} ms`);
  }
  if (down.length) return fail([...down, ...results].join('; '), 'start or fix the backend, or correct `upstream` in the config (then reload: systemctl reload go-proxy-rewriter, or let reload.watch pick it up)');
  return pass(results.join('; '));
}

async function checkCache(ctx: DoctorContext): Promise<Verdict> {
  const base = adminUrl(ctx);
  if (!base) return skip('listen.admin is null: no admin listener to ask');
  let got: HttpAnswer;
  try {
    got = await httpGet(`${base}/cache/stats`, ctx.timeoutMs);
  } catch (err) {
    return skip(`${base}/cache/stats: ${errText(err)} (the proxy check above says why)`);
  }
  if (got.status === 404) return skip('this proxy has no /cache/stats');
  if (got.status !== 200) return fail(`${base}/cache/stats answered ${got.status}`, 'see the proxy\'s log');
  return pass(summarizeCacheStats(got.body).slice(0, 400));
}

/** One line of /cache/stats: the memory and disk tiers when it has them, else its JSON (or text) as it is. */
export function summarizeCacheStats(body: string): string {
  let stats: unknown;
  try {
    stats = JSON.parse(body);
  } catch {
    return body.trim().replace(/\s+/g, ' ');
  }
  const tier = (t: unknown): string | undefined => {
    if (typeof t !== 'object' || t === null) return undefined;
    const { entries, bytes, maxBytes } = t as { entries?: unknown; bytes?: unknown; maxBytes?: unknown };
    if (typeof entries !== 'number' || typeof bytes !== 'number') return undefined;
    return `${entries} entries, ${bytes} bytes${typeof maxBytes === 'number' ? ` of ${maxBytes}` : ''}`;
  };
  const s = (typeof stats === 'object' && stats !== null ? stats : {}) as { memory?: unknown; disk?: unknown; requests?: unknown };
  const parts = [tier(s.memory) && `memory ${tier(s.memory)}`, tier(s.disk) && `disk ${tier(s.disk)}`].filter(Boolean);
  if (parts.length === 0) return JSON.stringify(stats);
  if (typeof s.requests === 'object' && s.requests !== null) parts.push(`requests ${Object.entries(s.requests).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`);
  return parts.join('; ');
}

/** The checks, in order: each name is what --skip takes and what the JSON reports. */
export const checks: ReadonlyArray<{ name: string; run: (ctx: DoctorContext) => Promise<Verdict> }> = [
  { name: 'proxy', run: checkProxy },
  { name: 'listeners', run: checkListeners },
  { name: 'interception', run: checkInterception },
  { name: 'trust', run: checkTrust },
  { name: 'go-env', run: checkGoEnv },
  { name: 'fetch', run: checkFetch },
  { name: 'upstream', run: checkUpstreams },
  { name: 'cache', run: checkCache },
];

/** The first address of a socket unit's `Listen=` (`systemctl show`): "127.0.0.1:9180 (Stream)", "[::]:80 (Stream)", or a bare port. */
export function socketAddress(listen: string): string | undefined {
  const first = /^\s*(\S+) \(Stream\)/.exec(listen)?.[1];
  if (first === undefined) return undefined;
  return /^\d+$/.test(first) ? `:${first}` : /:\d+$/.test(first) ? first : undefined;
}

/**
 * Under systemd the proxy listens on the socket units' addresses, not on
 * config.listen's: use theirs (unless --admin-url says otherwise), so the
 * checks ask the proxy where it really is.
 */
async function withSystemdSockets(ctx: DoctorContext): Promise<DoctorContext> {
  if (!underSystemd()) return ctx;
  const listen: Record<string, string | null> = { ...ctx.config.listen };
  let changed = false;
  for (const role of ['http', 'https', 'admin'] as const) {
    const shown = await run('systemctl', ['show', '--property=LoadState,Listen', `go-proxy-rewriter-${role}.socket`], ctx.env, ctx.timeoutMs);
    if (shown.code !== 0 || !/^LoadState=loaded$/m.test(shown.stdout)) continue;
    const address = socketAddress(/^Listen=(.*)$/m.exec(shown.stdout)?.[1] ?? '');
    if (address === undefined) continue;
    listen[role] = address;
    changed = true;
  }
  return changed ? { ...ctx, config: { ...ctx.config, listen: listen as Config['listen'] } } : ctx;
}

/** Runs every check in order; a check that throws is a FAIL naming the bug. */
export async function runChecks(given: DoctorContext): Promise<CheckResult[]> {
  const ctx = await withSystemdSockets(given);
  const results: CheckResult[] = [];
  for (const check of checks) {
    const started = performance.now();
    let verdict: Verdict;
    if (ctx.skip.includes(check.name)) verdict = skip('skipped by --skip');
    else {
      try {
        verdict = await check.run(ctx);
      } catch (err) {
        verdict = fail(`the check itself failed: ${(err as Error).stack ?? String(err)}`, 'please report this as a bug');
      }
    }
    results.push({ name: check.name, ...verdict, durationMs: Math.round(performance.now() - started) });
  }
  return results;
}
