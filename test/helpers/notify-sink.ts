// Test helper: a real sd_notify socket (AF_UNIX, SOCK_DGRAM) for the
// notifier to send to, as systemd's manager would bind it. A python3 child
// binds the socket and prints every datagram as one JSON line: its text, the
// sender PID from SCM_CREDENTIALS, the sender's parent PID (read from /proc
// while the sender still waits on its barrier) and how many fds came with it.
// systemd-notify's BARRIER=1 carries one, which the helper closes, releasing
// the sender, just as the manager does (optionally after a delay, to play a
// busy manager). The child is stopped and its directory removed when the
// test ends. Requires python3 and systemd-notify (see requireNotifyTools);
// missing ones fail the test, they are never skipped (.ci/run installs
// them). Must not: import from src/ or interpret the messages (tests decide
// what a sequence means).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { onTestFinished } from 'vitest';

const SINK = String.raw`
import array, json, os, socket, sys, time
hold_s = int(sys.argv[2]) / 1000
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": sys.argv[1]}), flush=True)

def parent_of(pid):
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return int(stat[stat.rindex(")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None

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
    # All before the fds are closed: until then the sender still waits on its
    # barrier, so it is alive for /proc, and it cannot have exited (and the
    # test moved on) before its datagrams are recorded.
    ppid = parent_of(pid) if pid else None
    print(json.dumps({"data": data.decode("utf-8", "replace"), "pid": pid, "ppid": ppid, "fds": len(fds)}), flush=True)
    if fds and hold_s:
        time.sleep(hold_s)  # a busy manager: the sender waits on its barrier meanwhile
    for fd in fds:
        os.close(fd)
`;

/** One datagram the sink received. */
export interface Datagram {
  /** The payload, e.g. `READY=1\nSTATUS=...`. */
  data: string;
  /** The sender PID from SCM_CREDENTIALS (null if none came). */
  pid: number | null;
  /**
   * The parent of `pid` when the datagram was read, from /proc; null when the
   * process was already gone or `pid` is not in our PID namespace.
   */
  ppid: number | null;
  /** Number of fds passed with it (SCM_RIGHTS). */
  fds: number;
}

/** A running notify socket and what it received. */
export interface Sink {
  /** The socket path, for NOTIFY_SOCKET. */
  readonly path: string;
  /** Every datagram so far, barriers included, in arrival order. */
  readonly all: Datagram[];
  /** The messages, without systemd-notify's BARRIER=1 datagrams. */
  messages(): string[];
  /** Waits (at most `timeoutMs`, default 5000) until `count` messages arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<string[]>;
  /**
   * Waits (at most `timeoutMs`, default 5000) until `predicate` holds for
   * the messages so far; rejects naming `what` and listing them.
   */
  until(what: string, predicate: (messages: string[]) => boolean, timeoutMs?: number): Promise<string[]>;
}

/** Fails (never skips) when a tool the sink or the notifier needs is missing. */
export function requireNotifyTools(): void {
  for (const [command, install] of [
    ['python3', 'python3'],
    ['systemd-notify', 'systemd'],
  ] as const) {
    try {
      execFileSync(command, ['--version'], { stdio: 'ignore' });
    } catch (err) {
      throw new Error(`${command} is required for this test (apt-get install -y ${install}): ${String(err)}`);
    }
  }
}

/** Options of {@link startSink}. */
export interface SinkOptions {
  /**
   * Hold each datagram's fds (a BARRIER=1's) this many ms before closing
   * them, as a busy manager would: each sender stays blocked that long, and
   * later datagrams wait behind. Default 0.
   */
  holdBarrierMs?: number;
}

/** Binds a fresh notify socket in a temp dir; resolves once it receives. */
export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-notify-'));
  const script = join(dir, 'sink.py');
  const path = join(dir, 'notify.sock');
  writeFileSync(script, SINK);
  const child = spawn('python3', [script, path, String(opts.holdBarrierMs ?? 0)], { stdio: ['ignore', 'pipe', 'inherit'] });
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
      for (const wake of [...waiters]) wake();
    });
  });
  await listening;

  const messages = () => all.filter((d) => d.data !== 'BARRIER=1').map((d) => d.data);
  function until(what: string, predicate: (messages: string[]) => boolean, timeoutMs = 5000): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate(messages())) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(messages());
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`expected ${what} within ${timeoutMs} ms, got ${JSON.stringify(messages())}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  }
  return {
    path,
    all,
    messages,
    waitFor: (count, timeoutMs) => until(`${count} notify messages`, (m) => m.length >= count, timeoutMs),
    until,
  };
}
