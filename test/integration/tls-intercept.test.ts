// Acceptance of interception: a build host that keeps the go command's
// default GOPROXY (https://proxy.golang.org,direct) is sent to the proxy by
// DNS and iptables, and trusts only the proxy's CA. Everything runs in a
// throwaway network namespace (test/helpers/netns.ts): its /etc/hosts maps the
// Go proxy hosts to 127.0.0.1 and `iptables -t nat OUTPUT` redirects port 443
// to the proxy's https listener. The proxy and the fixture backend run in a
// child inside it (test/fixtures/intercept-stack.ts). Checked with the real
// go command, openssl and curl. Needs root, ip, iptables, go, openssl and
// curl; a missing one fails the test.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect, onTestFinished, test } from 'vitest';
import { goEnv, parseJsonStream, requireTool, type GoModDownload } from '../helpers/go.js';
import { createNetns, execTool, requireSystemTool, type ExecResult, type Netns } from '../helpers/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const STACK = join(ROOT, 'test/fixtures/intercept-stack.ts');
const HOSTS = ['proxy.golang.org', 'goproxy.cn', 'goproxy.io', 'sum.golang.org'];
const MODULES = [
  'example.com/BurntSushi/toml@v1.0.0',
  'example.com/rc/mod@v1.0.0-RC1',
  'example.com/major/v2@v2.1.0',
  'example.com/incompat@v3.0.0+incompatible',
  'example.com/app@v1.2.0',
  'example.com/big@v1.0.0',
];
const GO_TIMEOUT_MS = 45_000;
const STACK_READY_MS = 30_000;
// Variables that would send the go command, curl or openssl elsewhere, or add trust.
const DROPPED_ENV = ['http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy', 'CURL_CA_BUNDLE', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'GOPROXY', 'GOSUMDB', 'GOFLAGS'];

/** A line the stack child printed: its own (`stack`) or the proxy's pino line (`msg`). */
interface StackLine {
  stack?: string;
  msg?: string;
  [field: string]: unknown;
}

interface BackendRequest {
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

/** The namespace with the proxy and backend running inside and port 443 redirected to the proxy. */
interface Stack {
  ns: Netns;
  dir: string;
  caPem: string;
  /** An empty directory, to replace the system trust directory. */
  noCerts: string;
  httpsPort: number;
  backend: string;
  lines: StackLine[];
  /** Environment for tools run inside: no proxy variables, no extra trust. */
  env: NodeJS.ProcessEnv;
  /** Sends a command to the child and resolves with its reply line. */
  command(cmd: 'requests' | 'reset'): Promise<StackLine>;
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of DROPPED_ENV) delete env[name];
  return env;
}

/** Resolves with the first line from index `from` on that satisfies `predicate`, polling for at most `timeoutMs`. */
async function waitForLine(
  lines: StackLine[],
  from: number,
  predicate: (l: StackLine) => boolean,
  what: string,
  timeoutMs: number,
  exited: () => string | undefined,
): Promise<StackLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = lines.slice(from).find(predicate);
    if (found) return found;
    const exit = exited();
    if (exit !== undefined) throw new Error(`intercept stack exited (${exit}) before ${what}`);
    if (Date.now() > deadline) throw new Error(`intercept stack: no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function startStack(): Promise<Stack> {
  requireTool('go');
  requireSystemTool('openssl');
  requireSystemTool('curl');
  // One hook runs the cleanups last-in first-out: the child (by pid), then the namespace, then the files.
  const cleanups: Array<() => Promise<void>> = [];
  onTestFinished(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const dir = await mkdtemp(join(tmpdir(), 'gpr-intercept-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  // An empty trust directory: with SSL_CERT_DIR (go) or --capath (curl) pointing
  // here, ca.pem is the only root, not /etc/ssl/certs as well.
  const noCerts = join(dir, 'no-certs');
  await mkdir(noCerts);
  const ns = await createNetns({ hosts: HOSTS });
  cleanups.push(() => ns.remove());

  const env = cleanEnv();
  const child = ns.spawn(process.execPath, ['--import', 'tsx', STACK, dir], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let exit: string | undefined;
  const stderr: string[] = [];
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `code ${code} signal ${signal}; stderr: ${stderr.join('').trim()}`;
      resolve();
    });
  });
  child.once('error', (err) => {
    exit = `spawn failed: ${err.message}`;
  });
  child.stderr?.on('data', (b: Buffer) => stderr.push(b.toString()));
  cleanups.push(async () => {
    if (child.pid === undefined || exit !== undefined) return;
    process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => exit === undefined && child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const lines: StackLine[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as StackLine);
    } catch {
      lines.push({ stack: 'unparsed', line });
    }
  });
  const ready = await waitForLine(lines, 0, (l) => l.stack === 'ready', 'ready line', STACK_READY_MS, () => exit);
  const httpsPort = ready.httpsPort as number;
  await ns.redirect(443, httpsPort);

  const stdin = child.stdin!;
  return {
    ns,
    dir,
    caPem: ready.caPem as string,
    noCerts,
    httpsPort,
    backend: ready.backend as string,
    lines,
    env,
    async command(cmd) {
      const from = lines.length;
      stdin.write(`${cmd}\n`);
      return waitForLine(lines, from, (l) => l.stack === cmd, `reply to ${cmd}`, 5000, () => exit);
    },
  };
}

/** `go mod download -json MODULES` inside the namespace with a fresh module cache; returns path@version -> "Sum GoModSum". */
async function goDownload(s: Stack, goproxy: string | undefined): Promise<Map<string, string>> {
  const g = await goEnv({ goproxy: 'off', home: await mkdtemp(join(s.dir, 'go-')) });
  const env = { ...g.env };
  for (const name of DROPPED_ENV) delete env[name];
  // Unset GOPROXY is the real default, https://proxy.golang.org,direct (GOENV points at no file).
  if (goproxy !== undefined) env.GOPROXY = goproxy;
  Object.assign(env, {
    GOSUMDB: 'off',
    GOFLAGS: '-modcacherw',
    // Trust exactly the proxy's CA (an unset SSL_CERT_DIR would add /etc/ssl/certs).
    SSL_CERT_FILE: s.caPem,
    SSL_CERT_DIR: s.noCerts,
  });
  const work = join(g.dir, 'work');
  await mkdir(work);
  await writeFile(join(work, 'go.mod'), 'module tmp\n\ngo 1.19\n');
  const result = await s.ns.exec(requireTool('go'), ['mod', 'download', '-json', ...MODULES], { cwd: work, env, timeoutMs: GO_TIMEOUT_MS });
  expect(result.code, `go mod download (GOPROXY=${goproxy ?? 'default'}) failed:\n${result.stderr}\n${result.stdout}`).toBe(0);
  const sums = new Map<string, string>();
  for (const r of parseJsonStream<GoModDownload>(result.stdout)) {
    expect(r.Error, `${r.Path}@${r.Version}`).toBeUndefined();
    expect(r.Sum).toMatch(/^h1:/);
    expect(r.GoModSum).toMatch(/^h1:/);
    sums.set(`${r.Path}@${r.Version}`, `${r.Sum} ${r.GoModSum}`);
  }
  return sums;
}

/** `openssl s_client` inside the namespace to 127.0.0.1:443 (redirected to the proxy); its exit code and whole output. */
async function sClient(s: Stack, servername: string | null, extra: string[] = []): Promise<ExecResult & { text: string }> {
  const sni = servername === null ? ['-noservername'] : ['-servername', servername];
  const r = await s.ns.exec(requireSystemTool('openssl'), ['s_client', '-connect', '127.0.0.1:443', ...sni, '-showcerts', ...extra], { env: s.env, timeoutMs: 15_000 });
  return { ...r, text: r.stdout + r.stderr };
}

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g;

test(
  'the go command with its default GOPROXY, intercepted by DNS and iptables, gets the same hashes as direct, over TLS with SNI proxy.golang.org',
  { timeout: 90_000 },
  async () => {
    const s = await startStack();

    // Direct against the backend (inside the namespace, where it listens).
    const direct = await goDownload(s, s.backend);
    expect([...direct.keys()].sort()).toEqual([...MODULES].sort());
    expect((await s.command('reset')).stack).toBe('reset');
    const linesBefore = s.lines.length;

    // GOPROXY unset: https://proxy.golang.org,direct, resolved to 127.0.0.1:443 and redirected.
    const intercepted = await goDownload(s, undefined);
    expect(intercepted).toEqual(direct);

    // The TLS connections the go command made carried SNI proxy.golang.org.
    const lines = s.lines.slice(linesBefore);
    const tls = lines.filter((l) => l.stack === 'tls');
    expect(tls.length).toBeGreaterThan(0);
    for (const t of tls) expect(t).toMatchObject({ servername: 'proxy.golang.org', alpn: 'http/1.1', protocol: expect.stringMatching(/^TLSv1\.[23]$/) });

    // Every request was answered by the proxy for Host proxy.golang.org, rewritten to the internal layout.
    const access = lines.filter((l) => l.msg === 'request');
    expect(access.length).toBeGreaterThanOrEqual(MODULES.length * 2);
    for (const a of access) {
      expect(a).toMatchObject({ host: 'proxy.golang.org', status: 200, err: null });
      expect(a.upstreamPath).toMatch(/^\/v1\/modules\//);
    }
    expect(access.map((a) => a.path)).toContain('/example.com/!burnt!sushi/toml/@v/v1.0.0.zip');
    expect(access.map((a) => a.path)).toContain('/example.com/incompat/@v/v3.0.0+incompatible.mod');

    // The backend saw them arrive over https for proxy.golang.org.
    const requests = (await s.command('requests')).requests as BackendRequest[];
    expect(requests.length).toBe(access.filter((a) => a.cache !== 'HIT').length);
    for (const r of requests) {
      expect(r.path).toMatch(/^\/v1\/modules\//);
      expect(r.headers).toMatchObject({ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'proxy.golang.org' });
    }
    expect(requests.map((r) => r.path)).toContain('/v1/modules/example.com/!burnt!sushi/toml/versions/v1.0.0/zip');
    expect(requests.map((r) => r.path)).toContain('/v1/modules/example.com/big/versions/v1.0.0/zip');
  },
);

test('openssl verifies the leaf served for each intercepted host against ca.pem; the CA carries the name constraints', { timeout: 60_000 }, async () => {
  const s = await startStack();
  const openssl = requireSystemTool('openssl');

  for (const host of HOSTS) {
    const shown = await sClient(s, host);
    expect(shown.code, shown.text).toBe(0);
    const pems = shown.stdout.match(PEM_RE) ?? [];
    expect(pems, 'the proxy sends the leaf alone').toHaveLength(1);
    const leafPath = join(s.dir, `${host}.pem`);
    await writeFile(leafPath, pems[0]!);

    const verified = await execTool(openssl, ['verify', '-CAfile', s.caPem, '-purpose', 'sslserver', '-verify_hostname', host, leafPath], { env: s.env });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout.trim()).toBe(`${leafPath}: OK`);

    const text = (await execTool(openssl, ['x509', '-in', leafPath, '-text', '-noout'], { env: s.env })).stdout;
    expect(text).toMatch(/Signature Algorithm: (sha256WithRSAEncryption|ecdsa-with-SHA256)/);
    expect(text).toMatch(new RegExp(`X509v3 Subject Alternative Name: ?\\n\\s+DNS:${host.replace(/\./g, '\\.')}\\n`));
    expect(text).toContain('TLS Web Server Authentication');
  }

  const ca = (await execTool(openssl, ['x509', '-in', s.caPem, '-text', '-noout'], { env: s.env })).stdout;
  expect(ca).toMatch(/Signature Algorithm: (sha256WithRSAEncryption|ecdsa-with-SHA256)/);
  expect(ca).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0/);
  // The lines under the extension's heading (indented deeper than it): exactly these names, and no IP at all.
  const caLines = ca.split('\n');
  const heading = caLines.findIndex((l) => l.trim() === 'X509v3 Name Constraints: critical');
  expect(heading, ca).toBeGreaterThan(0);
  const indent = (l: string) => l.length - l.trimStart().length;
  const below = caLines.slice(heading + 1);
  const constraints = below.slice(0, below.findIndex((l) => indent(l) <= indent(caLines[heading]!))).map((l) => l.trim());
  expect(constraints).toEqual(['Permitted:', ...HOSTS.map((h) => `DNS:${h}`), 'Excluded:', 'IP:0.0.0.0/0.0.0.0', 'IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0']);
  // ca.pem is what clients are given: the certificate only.
  expect(await readFile(s.caPem, 'utf8')).not.toContain('PRIVATE KEY');
});

test('a handshake for a name outside tls.hosts, or without SNI, fails; a Host that is not the SNI gets 421', { timeout: 60_000 }, async () => {
  const s = await startStack();

  const evil = await sClient(s, 'evil.example.com');
  expect(evil.code, evil.text).not.toBe(0);
  // Node ends a refused SNICallback by closing the connection (no alert is sent).
  expect(evil.text).toContain('no peer certificate available');
  expect(evil.text).toContain('Cipher is (NONE)');

  // Without SNI there is no certificate to choose: TLS 1.3 (openssl's and Go's default) and 1.2 both fail.
  for (const version of ['-tls1_3', '-tls1_2']) {
    const noSni = await sClient(s, null, [version]);
    expect(noSni.code, noSni.text).not.toBe(0);
    expect(noSni.text).toContain('no peer certificate available');
    expect(noSni.text).toContain('Cipher is (NONE)');
  }

  const refused = () => s.lines.filter((l) => l.msg === 'tls handshake refused');
  await expect.poll(() => refused().map((l) => `${String(l.servername)} ${String(l.reason)}`).sort()).toEqual(['(no SNI) no_sni', 'evil.example.com name_not_allowed']);

  const curl = requireSystemTool('curl');
  const url = 'https://goproxy.cn/example.com/lib/@v/list';
  const args = ['-sS', '--max-time', '10', '--cacert', s.caPem, '--capath', s.noCerts, '-w', '\n%{http_code} %{ssl_verify_result}'];
  // Control: goproxy.cn:443 resolves (namespace hosts) and is redirected to the proxy, which serves it.
  const good = await s.ns.exec(curl, [...args, url], { env: s.env });
  expect(good.code, good.stderr).toBe(0);
  expect(good.stdout).toBe('v1.0.0\nv1.1.0\n\n200 0');

  const misdirected = await s.ns.exec(curl, [...args, '-H', 'Host: proxy.golang.org', url], { env: s.env });
  expect(misdirected.code, misdirected.stderr).toBe(0);
  expect(misdirected.stdout).toMatch(/\n421 0$/);
  expect(misdirected.stdout).toContain('Host proxy.golang.org does not match the TLS server name goproxy.cn');
  const access = s.lines.filter((l) => l.msg === 'request');
  expect(access.find((l) => l.status === 421)).toMatchObject({ host: 'proxy.golang.org', err: 'GPR_ERR_MISDIRECTED' });
  expect(access.find((l) => l.status === 200)).toMatchObject({ host: 'goproxy.cn', upstreamPath: '/v1/modules/example.com/lib/list' });
});
