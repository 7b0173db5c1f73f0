// sd_notify against a real AF_UNIX datagram socket (src/systemd/notify.ts).
// A python3 helper binds the socket, as systemd's manager would, and prints
// every datagram as one JSON line: its text, the sender PID from
// SCM_CREDENTIALS and how many fds came with it (systemd-notify's BARRIER=1
// carries one, which the helper closes, releasing the sender, just as the
// manager does). Requires python3 and systemd-notify; missing ones fail the
// test, they are never skipped (.ci/run installs them).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import type { GprError } from '../../src/errors.js';
import { createNotifier, monotonicUsec } from '../../src/systemd/notify.js';

const SINK = String.raw`
import array, json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": sys.argv[1]}), flush=True)
while True:
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid, fds = None, []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(payload[: len(payload) - len(payload) % a.itemsize])
            fds.extend(a)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(payload[0:4], sys.byteorder)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"data": data.decode("utf-8", "replace"), "pid": pid, "fds": len(fds)}), flush=True)
`;

interface Datagram {
  data: string;
  pid: number | null;
  fds: number;
}

interface Sink {
  readonly path: string;
  /** Every datagram so far, barriers included. */
  readonly all: Datagram[];
  /** The messages, without systemd-notify's BARRIER=1 datagrams. */
  messages(): string[];
  /** Waits (at most `timeoutMs`) until `count` messages arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<string[]>;
}

function requireTool(command: string, args: string[], install: string): void {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`${command} is required for this test (apt-get install -y ${install}): ${String(err)}`);
  }
}

async function startSink(): Promise<Sink> {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-notify-'));
  const script = join(dir, 'sink.py');
  const path = join(dir, 'notify.sock');
  writeFileSync(script, SINK);
  const child = spawn('python3', [script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const all: Datagram[] = [];
  const waiters = new Set<() => void>();
  const listening = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot start python3 notify sink: ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`python3 notify sink exited with ${code}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const parsed = JSON.parse(line) as Datagram | { listening: string };
      if ('listening' in parsed) resolve();
      else all.push(parsed);
      for (const wake of waiters) wake();
    });
  });
  await listening;

  const messages = () => all.filter((d) => d.data !== 'BARRIER=1').map((d) => d.data);
  return {
    path,
    all,
    messages,
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages().length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(messages());
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} notify messages, got ${JSON.stringify(messages())}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

function collectErrors(): { errors: GprError[]; onError: (err: GprError) => void } {
  const errors: GprError[] = [];
  return { errors, onError: (err) => errors.push(err) };
}

beforeAll(() => {
  requireTool('python3', ['--version'], 'python3');
  requireTool('systemd-notify', ['--version'], 'systemd');
});

describe('createNotifier against a real notify socket', () => {
  test('sends the exact messages, in call order, each acknowledged by a barrier', async () => {
    const sink = await startSink();
    const { errors, onError } = collectErrors();
    const notifier = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path }, { onError });
    expect(notifier.enabled).toBe(true);
    expect(notifier.watchdogIntervalMs).toBeNull();

    // Not awaited one by one: the queue alone must keep the order.
    const before = monotonicUsec();
    const sent = [
      notifier.ready('x'),
      notifier.reloading(),
      notifier.ready(),
      notifier.status('serving 3 hosts\nline two'),
      notifier.send('A=1', 'B=two words'),
      notifier.stopping(),
    ];
    await Promise.all(sent);
    const after = monotonicUsec();
    await notifier.close();

    const messages = await sink.waitFor(6);
    expect(messages).toHaveLength(6);
    expect(messages[0]).toBe('READY=1\nSTATUS=x');
    const reload = /^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$/.exec(messages[1] ?? '');
    expect(reload, messages[1]).not.toBeNull();
    const usec = BigInt(reload?.[1] ?? '0');
    expect(usec >= before && usec <= after, `${before} <= ${usec} <= ${after}`).toBe(true);
    expect(messages.slice(2)).toEqual(['READY=1', 'STATUS=serving 3 hosts line two', 'A=1\nB=two words', 'STOPPING=1']);
    // systemd-notify waited for the manager after each message (no --no-block).
    expect(sink.all.filter((d) => d.data === 'BARRIER=1' && d.fds === 1)).toHaveLength(6);
    expect(errors).toEqual([]);
  });

  test('pings the watchdog every WATCHDOG_USEC/2 until stopped', async () => {
    const sink = await startSink();
    const { errors, onError } = collectErrors();
    const notifier = createNotifier(
      { PATH: process.env.PATH, NOTIFY_SOCKET: sink.path, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) },
      { onError },
    );
    expect(notifier.watchdogIntervalMs).toBe(100);
    notifier.startWatchdog();
    notifier.startWatchdog(); // a second start must not double the pings
    await new Promise((resolve) => setTimeout(resolve, 500));
    notifier.stopWatchdog();
    await notifier.close();
    const pings = sink.messages();
    // One at once, then one per 100 ms: about 6, fewer on a loaded machine.
    expect(pings.length).toBeGreaterThanOrEqual(2);
    expect(pings.length).toBeLessThanOrEqual(7);
    expect(new Set(pings)).toEqual(new Set(['WATCHDOG=1']));
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(sink.messages()).toHaveLength(pings.length);
    expect(errors).toEqual([]);
  });

  test('no watchdog for another process (WATCHDOG_PID) or without WATCHDOG_USEC', async () => {
    const sink = await startSink();
    for (const env of [{ WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' }, {}]) {
      const notifier = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path, ...env });
      expect(notifier.watchdogIntervalMs).toBeNull();
      notifier.startWatchdog();
      await new Promise((resolve) => setTimeout(resolve, 150));
      await notifier.close();
    }
    expect(sink.messages()).toEqual([]);
  });

  test('failures go to onError, never to the caller, and the queue goes on', async () => {
    const sink = await startSink();
    const { errors, onError } = collectErrors();

    const missing = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: join(sink.path, '..', 'gone.sock') }, { onError });
    await expect(missing.ready()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe('GPR_ERR_NOTIFY');
    expect(errors[0]?.message).toMatch(/^sd_notify failed: systemd-notify READY=1 exited with 1: .*No such file or directory/);

    const noCommand = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path }, { onError, command: '/nonexistent/systemd-notify' });
    await expect(noCommand.stopping()).resolves.toBeUndefined();
    expect(errors[1]?.message).toMatch(/^sd_notify failed: cannot run \/nonexistent\/systemd-notify \(STOPPING=1\): spawn .*ENOENT/);

    const throwing = createNotifier(
      { PATH: process.env.PATH, NOTIFY_SOCKET: sink.path },
      {
        onError: (err) => {
          errors.push(err);
          throw new Error('a broken onError');
        },
      },
    );
    await expect(throwing.send('not an assignment')).resolves.toBeUndefined();
    await expect(throwing.send('A=1\nREADY=1')).resolves.toBeUndefined();
    await expect(throwing.status('still going')).resolves.toBeUndefined();
    await throwing.close();
    expect(errors.slice(2).map((e) => e.message)).toEqual([
      "sd_notify failed: 'not an assignment' is not a VAR=VALUE assignment on one line",
      "sd_notify failed: 'A=1 READY=1' is not a VAR=VALUE assignment on one line",
    ]);
    expect(await sink.waitFor(1)).toEqual(['STATUS=still going']);
  });

  test('after close() nothing is sent', async () => {
    const sink = await startSink();
    const notifier = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path });
    await notifier.ready();
    await notifier.close();
    await notifier.stopping();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sink.messages()).toEqual(['READY=1']);
  });
});

describe('createNotifier without NOTIFY_SOCKET', () => {
  test('is disabled and never runs the sender', async () => {
    const { errors, onError } = collectErrors();
    for (const env of [{}, { NOTIFY_SOCKET: '' }, { WATCHDOG_USEC: '200000' }]) {
      const notifier = createNotifier(env, { onError, command: '/nonexistent/systemd-notify' });
      expect(notifier.enabled).toBe(false);
      expect(notifier.watchdogIntervalMs).toBeNull();
      notifier.startWatchdog();
      await notifier.ready('x');
      await notifier.reloading();
      await notifier.close();
    }
    expect(errors).toEqual([]);
  });

  test('leaves env alone', () => {
    const env = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' };
    createNotifier(env);
    expect(env).toEqual({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' });
  });
});
