// Socket activation with the real systemd-socket-activate(1): a child Node
// process (a script written to a temp dir, run with tsx) takes its listeners
// from src/systemd/sockets.ts (listenTargets + listenOn) and answers each HTTP
// request with its role and fd; the test connects and checks who answered.
//
// What systemd-socket-activate 252 does, and how the tests live with it:
// - Without --accept it execs the child only on the first connection, so the
//   test's first request is what starts the child (it waits in the backlog).
// - `-l 127.0.0.1:0` is refused ("Failed to parse socket address"), so it
//   cannot hand out a kernel-chosen TCP port. For TCP the test uses its
//   pass-through ("file descriptors from sd_listen_fds() will be passed
//   through"): a python3 launcher binds 127.0.0.1:0, prints the port, puts
//   the socket on fd 3 with LISTEN_PID=its own pid and LISTEN_FDS, and execs
//   systemd-socket-activate, which passes it on (first, before its own -l
//   sockets) under the names from --fdname. No free port is picked and
//   rebound, so nothing races.
// - The child's environment is only PATH, HOME, TERM, USER and LISTEN_*.
// - One --fdname name is repeated for every fd; a different count of names
//   only warns, and then LISTEN_FDNAMES does not match LISTEN_FDS.
// Requires systemd-socket-activate and python3; missing ones fail the test.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { listenOn } from '../../src/systemd/sockets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SOCKETS_TS = pathToFileURL(join(ROOT, 'src/systemd/sockets.ts')).href;

// The child: argv[2] is the module URL, argv[3] the `listen` config as JSON.
const CHILD = String.raw`
import http from 'node:http';
const { listenTargets, listenOn } = await import(process.argv[2]);
const listen = JSON.parse(process.argv[3]);
const passed = { LISTEN_PID: process.env.LISTEN_PID, LISTEN_FDS: process.env.LISTEN_FDS, LISTEN_FDNAMES: process.env.LISTEN_FDNAMES };
try {
  const targets = listenTargets(listen, process.env, process.pid);
  const left = Object.keys(process.env).filter((name) => name.startsWith('LISTEN_'));
  const listening = [];
  for (const target of targets) {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ role: target.role, fd: target.fd }));
    });
    await listenOn(server, target);
    listening.push({ target, address: server.address() });
  }
  console.log(JSON.stringify({ pid: process.pid, passed, left, listening }));
} catch (err) {
  console.error(err.code + ': ' + err.message);
  process.exit(3);
}
`;

// Binds one TCP socket per host on port 0, reports the ports, and execs argv[2:]
// with the sockets on fds 3, 4, ... as if it had been socket-activated itself.
const LAUNCHER = String.raw`
import json, os, socket, sys
socks = []
for host in sys.argv[1].split(","):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    s.listen(64)
    socks.append(s)
print(json.dumps({"ports": [s.getsockname()[1] for s in socks]}), flush=True)
# Move them out of the way first, so dup2 never targets one of their own fds.
high = [os.dup(s.fileno()) for s in socks]
for s in socks:
    s.close()
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)  # inheritable
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(len(high))
os.environ.pop("LISTEN_FDNAMES", None)
os.execvp(sys.argv[2], sys.argv[2:])
`;

interface ChildReport {
  pid: number;
  passed: Record<string, string | undefined>;
  left: string[];
  listening: Array<{ target: { role: string; fd?: number }; address: net.AddressInfo | string }>;
}

interface Activated {
  readonly child: ChildProcess;
  readonly dir: string;
  /** Lines the child (or the launcher, before exec) printed on stdout. */
  readonly lines: string[];
  nextLine(): Promise<string>;
  stderr(): string;
  /** Resolves once systemd-socket-activate logged that it listens on every one of `names`. */
  listening(...names: string[]): Promise<void>;
  exited: Promise<number | null>;
}

function requireTool(command: string, args: string[], install: string): void {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`${command} is required for this test (apt-get install -y ${install}): ${String(err)}`);
  }
}

/** Spawns `argv` in a fresh temp dir (with child.mjs in it); killed and removed when the test ends. */
function activate(argv: (dir: string) => string[]): Activated {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-activate-'));
  writeFileSync(join(dir, 'child.mjs'), CHILD);
  writeFileSync(join(dir, 'launcher.py'), LAUNCHER);
  const [command, ...args] = argv(dir);
  if (command === undefined) throw new Error('empty argv');
  // cwd = repo root, so `--import tsx` resolves from node_modules.
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  let stderr = '';
  const stderrWaiters = new Set<() => void>();
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
    for (const wake of stderrWaiters) wake();
  });
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let read = 0;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    waiting.shift()?.(lines[read++]!);
  });
  return {
    child,
    dir,
    lines,
    exited,
    stderr: () => stderr,
    listening(...names) {
      // Logged after every socket is bound and listening; connecting earlier
      // fails with ENOENT or ECONNREFUSED.
      const done = () => names.every((name) => stderr.includes(`Listening on ${join(dir, name)} as `));
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!done()) return;
          stderrWaiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          stderrWaiters.delete(check);
          reject(new Error(`systemd-socket-activate is not listening on ${names.join(', ')}; stderr:\n${stderr}`));
        }, 20_000);
        stderrWaiters.add(check);
        check();
      });
    },
    nextLine() {
      if (read < lines.length) return Promise.resolve(lines[read++]!);
      return new Promise((resolve, reject) => {
        waiting.push(resolve);
        void exited.then((code) => reject(new Error(`child exited with ${code} before printing; stderr:\n${stderr}`)));
      });
    },
  };
}

function get(options: http.RequestOptions): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...options, path: '/', timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as unknown }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
  });
}

const node = (dir: string, listen: object) => ['node', '--import', 'tsx', join(dir, 'child.mjs'), SOCKETS_TS, JSON.stringify(listen)];
const CONFIG = { https: '127.0.0.1:1', http: '127.0.0.1:2', admin: '127.0.0.1:3' };

beforeAll(() => {
  requireTool('systemd-socket-activate', ['--version'], 'systemd');
  requireTool('python3', ['--version'], 'python3');
});

describe('under systemd-socket-activate', () => {
  test('one named unix socket: adopted as its role; other roles are not bound from config', async () => {
    const run = activate((dir) => ['systemd-socket-activate', '-l', join(dir, 'https.sock'), '--fdname=https', ...node(dir, CONFIG)]);
    await run.listening('https.sock');
    // The first connection is what makes systemd-socket-activate exec the child.
    const answer = await get({ socketPath: join(run.dir, 'https.sock') });
    expect(answer).toEqual({ status: 200, body: { role: 'https', fd: 3 } });

    const report = JSON.parse(await run.nextLine()) as ChildReport;
    expect(report.passed).toEqual({ LISTEN_PID: String(report.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'https' });
    expect(report.left).toEqual([]); // deleted, so children would not inherit them
    // Node names a unix socket only when it bound the path itself.
    expect(report.listening).toEqual([{ target: { role: 'https', fd: 3 }, address: null }]);
    expect(run.child.pid).toBe(report.pid); // exec'd: same process
  });

  test('several named sockets (--fdname=https:http:admin)', async () => {
    const run = activate((dir) => [
      'systemd-socket-activate',
      ...['-l', join(dir, 'a.sock'), '-l', join(dir, 'b.sock'), '-l', join(dir, 'c.sock')],
      '--fdname=https:http:admin',
      ...node(dir, {}),
    ]);
    await run.listening('a.sock', 'b.sock', 'c.sock');
    expect(await get({ socketPath: join(run.dir, 'b.sock') })).toEqual({ status: 200, body: { role: 'http', fd: 4 } });
    expect(await get({ socketPath: join(run.dir, 'a.sock') })).toEqual({ status: 200, body: { role: 'https', fd: 3 } });
    expect(await get({ socketPath: join(run.dir, 'c.sock') })).toEqual({ status: 200, body: { role: 'admin', fd: 5 } });
    const report = JSON.parse(await run.nextLine()) as ChildReport;
    expect(report.passed.LISTEN_FDNAMES).toBe('https:http:admin');
    expect(report.listening.map((l) => l.target)).toEqual([
      { role: 'https', fd: 3 },
      { role: 'http', fd: 4 },
      { role: 'admin', fd: 5 },
    ]);
  });

  test('an unknown socket name: the child exits non-zero with the reason', async () => {
    const run = activate((dir) => [
      'systemd-socket-activate',
      ...['-l', join(dir, 'a.sock'), '-l', join(dir, 'b.sock')],
      '--fdname=https:foo',
      ...node(dir, CONFIG),
    ]);
    await run.listening('a.sock', 'b.sock');
    // Start it; the connection dies with the child.
    await get({ socketPath: join(run.dir, 'a.sock') }).catch(() => undefined);
    expect(await run.exited).toBe(3);
    expect(run.stderr()).toContain(
      "GPR_ERR_LISTEN_FDS: socket activation: socket name 'foo' (fd 4) is not one of https, http, admin: set FileDescriptorName= in the .socket unit",
    );
  });

  test('no --fdname: every fd is "unknown" and refused', async () => {
    const run = activate((dir) => ['systemd-socket-activate', '-l', join(dir, 'a.sock'), ...node(dir, CONFIG)]);
    await run.listening('a.sock');
    await get({ socketPath: join(run.dir, 'a.sock') }).catch(() => undefined);
    expect(await run.exited).toBe(3);
    expect(run.stderr()).toContain("socket name 'unknown' (fd 3) is not one of https, http, admin");
  });

  test('TCP on a kernel-chosen port, passed through, beside a unix socket', async () => {
    const run = activate((dir) => [
      'python3',
      join(dir, 'launcher.py'),
      '127.0.0.1',
      ...['systemd-socket-activate', '-l', join(dir, 'admin.sock'), '--fdname=http:admin'],
      ...node(dir, CONFIG),
    ]);
    const { ports } = JSON.parse(await run.nextLine()) as { ports: number[] };
    const port = ports[0]!;
    await run.listening('admin.sock');
    expect(await get({ host: '127.0.0.1', port })).toEqual({ status: 200, body: { role: 'http', fd: 3 } });
    expect(await get({ socketPath: join(run.dir, 'admin.sock') })).toEqual({ status: 200, body: { role: 'admin', fd: 4 } });
    const report = JSON.parse(await run.nextLine()) as ChildReport;
    // The child can report the adopted port: what the proxy's `listening` log line would say.
    expect(report.listening[0]).toEqual({ target: { role: 'http', fd: 3 }, address: { address: '127.0.0.1', family: 'IPv4', port } });
  });

  test('two TCP sockets for one role (like IPv4 + IPv6)', async () => {
    const run = activate((dir) => [
      'python3',
      join(dir, 'launcher.py'),
      '127.0.0.1,127.0.0.1',
      ...['systemd-socket-activate', '--fdname=https'], // one name is repeated for every fd
      ...node(dir, CONFIG),
    ]);
    const { ports } = JSON.parse(await run.nextLine()) as { ports: number[] };
    expect(ports).toHaveLength(2);
    expect(await get({ host: '127.0.0.1', port: ports[1]! })).toEqual({ status: 200, body: { role: 'https', fd: 4 } });
    expect(await get({ host: '127.0.0.1', port: ports[0]! })).toEqual({ status: 200, body: { role: 'https', fd: 3 } });
    const report = JSON.parse(await run.nextLine()) as ChildReport;
    expect(report.passed.LISTEN_FDNAMES).toBe('https:https');
    expect(report.listening.map((l) => l.address)).toEqual(
      ports.map((port) => ({ address: '127.0.0.1', family: 'IPv4', port })),
    );
  });
});

describe('listenOn errors', () => {
  test('an address in use: GPR_ERR_LISTEN naming address and role', async () => {
    const first = net.createServer();
    onTestFinished(() => void first.close());
    await listenOn(first, { role: 'http', host: '127.0.0.1', port: 0 });
    const { port } = first.address() as net.AddressInfo;
    const second = net.createServer();
    await expect(listenOn(second, { role: 'admin', host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'GPR_ERR_LISTEN',
      message: expect.stringMatching(new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port} \\(admin\\): listen EADDRINUSE`)),
      cause: expect.objectContaining({ code: 'EADDRINUSE' }),
    });
    expect(second.listening).toBe(false);
  });

  test('an fd that is not a socket: GPR_ERR_LISTEN naming the fd', async () => {
    const fd = openSync('/dev/null', 'r');
    onTestFinished(() => closeSync(fd));
    await expect(listenOn(net.createServer(), { role: 'https', fd })).rejects.toMatchObject({
      code: 'GPR_ERR_LISTEN',
      message: `cannot listen on fd ${fd} (https): listen EINVAL: invalid argument`,
    });
  });

  test('a bad port given directly (bypassing parseListenAddress) rejects, not throws', async () => {
    await expect(listenOn(net.createServer(), { role: 'http', host: '127.0.0.1', port: 70000 })).rejects.toMatchObject({
      code: 'GPR_ERR_LISTEN',
      message: expect.stringMatching(/^cannot listen on 127\.0\.0\.1:70000 \(http\): /),
    });
  });

  test('the listen backlog is LISTEN_BACKLOG, not Node’s 511', async () => {
    requireTool('ss', ['-V'], 'iproute2');
    const server = net.createServer();
    onTestFinished(() => void server.close());
    await listenOn(server, { role: 'http', host: '127.0.0.1', port: 0 });
    const { port } = server.address() as net.AddressInfo;
    // For a listening socket ss shows the backlog in Send-Q, capped by net.core.somaxconn.
    const line = execFileSync('ss', ['-Hltn', `sport = :${port}`]).toString().trim();
    const somaxconn = Number(execFileSync('cat', ['/proc/sys/net/core/somaxconn']).toString());
    expect(Number(line.split(/\s+/)[2])).toBe(Math.min(4096, somaxconn));
  });
});
