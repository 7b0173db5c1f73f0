// The systemd/ directory: units, recipe scripts, example config and
// install.sh, checked with the real tools. No systemd runs here (container),
// so nothing is started; the units are staged with install.sh into a temp
// root and verified with `systemd-analyze verify --root`.
//
// What systemd-analyze 252 needs, found out for this test:
// - It exits 0 on unknown keys and unparsable values, printing only a
//   warning; so "passes" here means exit 0 AND no output.
// - With --root it resolves units (sysinit.target, sockets.target, ...) and
//   ExecStart= binaries inside the root: the test copies the host's
//   /usr/lib/systemd/system there and puts stub executables at the host
//   binaries the units name (node, /bin/kill); install.sh puts the scripts.
// Requires systemd-analyze, nft, iptables-restore, ip6tables-restore, bash,
// runuser, and root; missing ones fail the test (.ci/run installs systemd,
// nftables, iptables).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { LISTEN_ROLES } from '../../src/systemd/listen-fds.js';
import { LISTEN_BACKLOG } from '../../src/systemd/sockets.js';

const SYSTEMD_DIR = fileURLToPath(new URL('../../systemd/', import.meta.url));
const UNITS = [
  'go-proxy-rewriter.service',
  'go-proxy-rewriter-https.socket',
  'go-proxy-rewriter-http.socket',
  'go-proxy-rewriter-admin.socket',
  'go-proxy-rewriter-intercept.service',
  'go-proxy-rewriter-client-env.service',
];
const SCRIPTS = ['install.sh', 'intercept-nft.sh', 'intercept-iptables.sh', 'intercept-common.sh', 'client-env.sh'];

function requireTool(command: string, args: string[], install: string): void {
  const run = spawnSync(command, args, { stdio: 'ignore' });
  if (run.error !== undefined || run.status !== 0) {
    throw new Error(`${command} is required for this test (apt-get install -y ${install}): ${String(run.error ?? `exit ${run.status}`)}`);
  }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-units-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.error !== undefined) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs install.sh into a fresh staging root; returns the root. */
function stage(args: string[] = []): { root: string; stdout: string } {
  const root = tempDir();
  const result = run('bash', [join(SYSTEMD_DIR, 'install.sh'), ...args], { env: { ...process.env, DESTDIR: root } });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return { root, stdout: result.stdout };
}

/** `Key=value` lines of a unit file, comments and blank lines dropped. */
function directives(unit: string): Array<[string, string]> {
  return readFileSync(join(SYSTEMD_DIR, unit), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Za-z]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}
const directive = (unit: string, key: string) => directives(unit).filter(([k]) => k === key).map(([, v]) => v);

beforeAll(() => {
  requireTool('systemd-analyze', ['--version'], 'systemd');
  requireTool('bash', ['--version'], 'bash');
  requireTool('nft', ['--version'], 'nftables');
  requireTool('iptables-restore', ['--version'], 'iptables');
  requireTool('ip6tables-restore', ['--version'], 'iptables');
});

describe('install.sh', () => {
  test('DESTDIR stages units, scripts, recipes and the config', () => {
    const { root, stdout } = stage();
    const unitDir = join(root, 'etc/systemd/system');
    const libDir = join(root, 'usr/local/lib/go-proxy-rewriter');
    expect(readdirSync(unitDir).sort()).toEqual([...UNITS].sort());
    for (const unit of UNITS) {
      expect(readFileSync(join(unitDir, unit), 'utf8'), unit).toBe(readFileSync(join(SYSTEMD_DIR, unit), 'utf8'));
      expect(statSync(join(unitDir, unit)).mode & 0o777, unit).toBe(0o644);
    }
    for (const script of ['intercept-nft.sh', 'intercept-iptables.sh', 'client-env.sh']) {
      expect(statSync(join(libDir, script)).mode & 0o777, script).toBe(0o755);
    }
    for (const file of ['intercept.nft', 'intercept-common.sh', 'go-proxy-rewriter.sysusers', 'hosts.example', 'dnsmasq-go-proxy.conf', 'config.json', 'README.md']) {
      expect(statSync(join(libDir, file)).mode & 0o777, file).toBe(0o644);
    }
    expect(readFileSync(join(root, 'etc/go-proxy-rewriter/config.json'), 'utf8')).toBe(readFileSync(join(SYSTEMD_DIR, 'config.json'), 'utf8'));
    expect(stdout).toContain('not running systemctl daemon-reload');
  });

  test('keeps an existing config', () => {
    const { root } = stage();
    const config = join(root, 'etc/go-proxy-rewriter/config.json');
    writeFileSync(config, '{"edited": true}\n');
    const again = run('bash', [join(SYSTEMD_DIR, 'install.sh')], { env: { ...process.env, DESTDIR: root } });
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('keeping the existing /etc/go-proxy-rewriter/config.json');
    expect(readFileSync(config, 'utf8')).toBe('{"edited": true}\n');
  });

  test('--prefix, --app-dir and --node rewrite the paths in the units', () => {
    const { root } = stage(['--prefix', '/usr', '--app-dir=/srv/gpr', '--node', '/usr/local/bin/node']);
    const unit = (name: string) => readFileSync(join(root, 'etc/systemd/system', name), 'utf8');
    expect(unit('go-proxy-rewriter.service')).toContain(
      '\nExecStart=/usr/local/bin/node /srv/gpr/dist/src/main.js serve --config /etc/go-proxy-rewriter/config.json\n',
    );
    expect(unit('go-proxy-rewriter-intercept.service')).toContain('\nExecStart=/usr/lib/go-proxy-rewriter/intercept-nft.sh apply\n');
    expect(unit('go-proxy-rewriter-client-env.service')).toContain('\nExecStart=/usr/lib/go-proxy-rewriter/client-env.sh\n');
    expect(existsSync(join(root, 'usr/lib/go-proxy-rewriter/intercept-nft.sh'))).toBe(true);
  });

  test.each([
    [['--prefix', 'relative'], "'relative' must be an absolute path"],
    [['--app-dir', '/opt/a b'], "'/opt/a b' has characters unit files cannot take"],
    [['--frobnicate'], "unknown argument '--frobnicate'"],
  ])('refuses %j', (args, message) => {
    const root = tempDir();
    const result = run('bash', [join(SYSTEMD_DIR, 'install.sh'), ...args], { env: { ...process.env, DESTDIR: root } });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(readdirSync(root)).toEqual([]);
  });
});

describe('systemd-analyze verify', () => {
  /** A staged root that systemd-analyze --root can load units from. */
  function verifiableRoot(): string {
    const { root } = stage(['--node', process.execPath]);
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    // verify only checks that ExecStart= binaries exist and are executable.
    for (const binary of [process.execPath, '/bin/kill']) {
      mkdirSync(join(root, binary, '..'), { recursive: true });
      writeFileSync(join(root, binary), '#!/bin/sh\nexit 0\n');
      chmodSync(join(root, binary), 0o755);
    }
    return root;
  }

  test('every unit, as installed, verifies without a single warning', () => {
    const root = verifiableRoot();
    const result = run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, ...UNITS], { cwd: root });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test('the check notices a bad unit (so a silent pass means something)', () => {
    const root = verifiableRoot();
    const unit = join(root, 'etc/systemd/system/go-proxy-rewriter.service');
    writeFileSync(unit, readFileSync(unit, 'utf8').replace('Type=notify\n', 'Type=notifyy\nFrobnicate=yes\n'));
    const result = run('systemd-analyze', ['verify', '--man=no', `--root=${root}`, 'go-proxy-rewriter.service'], { cwd: root });
    expect(result.stderr).toContain("Failed to parse service type, ignoring: notifyy");
    expect(result.stderr).toContain("Unknown key 'Frobnicate'");
  });
});

describe('units agree with the code and the config', () => {
  const config = JSON.parse(readFileSync(join(SYSTEMD_DIR, 'config.json'), 'utf8')) as {
    listen: Record<string, string>;
    tls: { dir: string; hosts: string[] };
    shutdown: { drainTimeoutMs: number };
  };

  test.each([
    ['go-proxy-rewriter-https.socket', 'https', '443'],
    ['go-proxy-rewriter-http.socket', 'http', '80'],
    ['go-proxy-rewriter-admin.socket', 'admin', '127.0.0.1:9180'],
  ])('%s: named %s for the proxy, on %s', (unit, name, listen) => {
    expect(directive(unit, 'FileDescriptorName')).toEqual([name]);
    expect(LISTEN_ROLES).toContain(name);
    expect(directive(unit, 'ListenStream')).toEqual([listen]);
    expect(directive(unit, 'Service')).toEqual(['go-proxy-rewriter.service']);
    expect(directive(unit, 'Accept')).toEqual(['no']);
    expect(directive(unit, 'Backlog')).toEqual([String(LISTEN_BACKLOG)]);
  });

  test('the service: notify via systemd-notify children, watchdog, stop after the drain', () => {
    const unit = 'go-proxy-rewriter.service';
    expect(directive(unit, 'Type')).toEqual(['notify']);
    expect(directive(unit, 'NotifyAccess')).toEqual(['all']);
    expect(directive(unit, 'WatchdogSec')).toEqual(['30']);
    expect(Number(directive(unit, 'TimeoutStopSec')[0]) * 1000).toBeGreaterThan(config.shutdown.drainTimeoutMs);
    expect(directive(unit, 'MemoryDenyWriteExecute')).toEqual([]); // V8's JIT needs W+X memory
    expect(directive(unit, 'CapabilityBoundingSet')).toEqual(['']);
    expect(`/var/lib/${directive(unit, 'StateDirectory')[0]}`).toBe(config.tls.dir);
    expect(directive(unit, 'ExecStart')[0]).toContain('--config /etc/go-proxy-rewriter/config.json');
  });

  test('the DNS recipes name exactly tls.hosts', () => {
    const hostsLines = readFileSync(join(SYSTEMD_DIR, 'hosts.example'), 'utf8').split('\n').filter((l) => /^[0-9a-f:.]+\s/.test(l));
    expect(hostsLines.map((l) => l.split(/\s+/)[0])).toEqual(['127.0.0.1', '::1']);
    for (const line of hostsLines) expect(line.split(/\s+/).slice(1)).toEqual(config.tls.hosts);
    const dnsmasq = readFileSync(join(SYSTEMD_DIR, 'dnsmasq-go-proxy.conf'), 'utf8').match(/^address=\/[^/]+\//gm) ?? [];
    expect(new Set(dnsmasq.map((a) => a.slice('address=/'.length, -1)))).toEqual(new Set(config.tls.hosts));
    expect(dnsmasq).toHaveLength(config.tls.hosts.length * 2); // IPv4 and IPv6 each
  });

  test('the example config listens on loopback and points at the CA directory', () => {
    expect(Object.keys(config.listen).sort()).toEqual([...LISTEN_ROLES].sort());
    for (const address of Object.values(config.listen)) expect(address).toMatch(/^127\.0\.0\.1:[0-9]+$/);
  });
});

describe('scripts', () => {
  test.each(SCRIPTS)('bash -n %s', (script) => {
    const result = run('bash', ['-n', join(SYSTEMD_DIR, script)]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  test('nft -c accepts intercept.nft', () => {
    const result = run('nft', ['-c', '-D', 'https_port=443', '-f', join(SYSTEMD_DIR, 'intercept.nft')]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  // IP literals resolve without DNS (getent returns them as they are).
  const hostsEnv = { ...process.env, GPR_HOSTS: '192.0.2.1 2001:db8::1 localhost', GPR_BYPASS_USERS: 'root', GPR_HTTPS_PORT: '8443' };

  test('intercept-nft.sh print: the whole transaction passes nft -c', () => {
    const printed = run('bash', [join(SYSTEMD_DIR, 'intercept-nft.sh'), 'print'], { env: hostsEnv });
    expect(printed.status).toBe(0);
    expect(printed.stdout.startsWith(readFileSync(join(SYSTEMD_DIR, 'intercept.nft'), 'utf8'))).toBe(true);
    // localhost's loopback answers are left out.
    expect(printed.stdout.split('\n').filter((line) => line.startsWith('add element'))).toEqual([
      'add element inet go_proxy_rewriter goproxy_v4 { 192.0.2.1 }',
      'add element inet go_proxy_rewriter goproxy_v6 { 2001:db8::1 }',
      'add element inet go_proxy_rewriter bypass_uids { 0 }',
    ]);
    const checked = run('nft', ['-c', '-D', 'https_port=8443', '-f', '-'], { input: printed.stdout });
    expect(checked.stderr).toBe('');
    expect(checked.status).toBe(0);
  });

  test('intercept-iptables.sh print: both families pass *tables-restore --test', () => {
    const printed = run('bash', [join(SYSTEMD_DIR, 'intercept-iptables.sh'), 'print'], { env: hostsEnv });
    expect(printed.status).toBe(0);
    const [v4, v6] = printed.stdout.split(/^# .*$/m).filter((part) => part.trim() !== '');
    expect(v4).toContain('-A GPR_OUTPUT -m owner --uid-owner 0 -j RETURN\n');
    expect(v4).toContain('-A GPR_OUTPUT -d 192.0.2.1 -p tcp --dport 443 -j REDIRECT --to-ports 8443\n');
    expect(v6).toContain('-A GPR_PREROUTING -d 2001:db8::1 -p tcp --dport 443 -j REDIRECT --to-ports 8443\n');
    for (const [tool, input] of [['iptables-restore', v4], ['ip6tables-restore', v6]] as const) {
      const checked = run(tool, ['--test', '--noflush'], { input });
      expect(checked.stderr, tool).toBe('');
      expect(checked.status, tool).toBe(0);
    }
  });

  test('intercept scripts fail clearly when nothing resolves', () => {
    for (const script of ['intercept-nft.sh', 'intercept-iptables.sh']) {
      const result = run('bash', [join(SYSTEMD_DIR, script), 'print'], { env: { ...hostsEnv, GPR_HOSTS: 'localhost' } });
      expect(result.status, script).toBe(1);
      expect(result.stderr).toContain(`${script}: no address for any of: localhost`);
    }
  });

  test('intercept scripts read tls.hosts from the config', () => {
    const dir = tempDir();
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify({ tls: { hosts: ['192.0.2.7'] } }));
    const env = { ...process.env, GPR_CONFIG: configPath, GPR_NODE: process.execPath, GPR_BYPASS_USERS: 'root' };
    const result = run('bash', [join(SYSTEMD_DIR, 'intercept-nft.sh'), 'print'], { env });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('goproxy_v4 { 192.0.2.7 }');
  });

  test('client-env.sh writes profile.d and runs go env -w as the user', () => {
    if (process.getuid?.() !== 0) throw new Error('this test runs client-env.sh with runuser and needs root');
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const fakeGo = join(dir, 'go');
    writeFileSync(fakeGo, `#!/bin/sh\necho "$(id -un) HOME=$HOME $*" > ${join(dir, 'go.args')}\n`);
    chmodSync(fakeGo, 0o755);
    const env = { ...process.env, GPR_PROFILE: join(dir, 'goproxy.sh'), GPR_GO_USER: 'root', GPR_GO: fakeGo, GPR_GOPROXY: 'http://proxy.build:80,direct' };
    const result = run('bash', [join(SYSTEMD_DIR, 'client-env.sh')], { env });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const profile = readFileSync(join(dir, 'goproxy.sh'), 'utf8');
    expect(profile).toContain("\nexport GOPROXY='http://proxy.build:80,direct'\n");
    expect(statSync(join(dir, 'goproxy.sh')).mode & 0o777).toBe(0o644);
    expect(execFileSync('bash', ['-c', `. ${join(dir, 'goproxy.sh')}; printf %s "$GOPROXY"`]).toString()).toBe('http://proxy.build:80,direct');
    expect(readFileSync(join(dir, 'go.args'), 'utf8')).toBe('root HOME=/root env -w GOPROXY=http://proxy.build:80,direct\n');
  });

  test('client-env.sh refuses a value a shell would interpret', () => {
    const dir = tempDir();
    const env = { ...process.env, GPR_PROFILE: join(dir, 'goproxy.sh'), GPR_GOPROXY: 'http://x/$(reboot)' };
    const result = run('bash', [join(SYSTEMD_DIR, 'client-env.sh')], { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('GPR_GOPROXY has characters a GOPROXY list cannot');
    expect(readdirSync(dir)).toEqual([]);
  });

  test('client-env.sh default matches the HTTP socket', () => {
    expect(directive('go-proxy-rewriter-client-env.service', 'Environment')).toContain('GPR_GOPROXY=http://127.0.0.1:80,direct');
    expect(directive('go-proxy-rewriter-http.socket', 'ListenStream')).toEqual(['80']);
  });
});
