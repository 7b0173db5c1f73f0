// Test helper process (run by fd-supervisor.ts with `node --import tsx`): a
// stand-in for systemd holding a .socket unit's listening socket. Its parent
// passes the socket as fd 4 (fd 3 is the IPC channel). On request it spawns a
// proxy with that socket as fd 3 and LISTEN_PID (the proxy's own pid, via a
// `sh -c 'LISTEN_PID=$$ exec ...'` shim), LISTEN_FDS=1 and LISTEN_FDNAMES set,
// and relays the proxy's stdout lines, stderr and exit over IPC.
// Must not: accept on the socket (Node never polls an fd it was only given),
// or outlive its parent (on disconnect it SIGKILLs its proxies and exits).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Parent -> supervisor. */
export type SupervisorCommand = { op: 'spawn'; id: number; argv: string[]; env: Record<string, string>; fdName: string };

/** Supervisor -> parent. */
export type SupervisorEvent =
  | { id: number; type: 'pid'; pid: number }
  | { id: number; type: 'line'; line: string }
  | { id: number; type: 'stderr'; text: string }
  | { id: number; type: 'exit'; code: number | null; signal: NodeJS.Signals | null };

/** The inherited listening socket in this process. */
const HELD_FD = 4;

const children = new Set<ChildProcess>();

function send(event: SupervisorEvent): void {
  process.send?.(event);
}

function start(cmd: SupervisorCommand): void {
  const [command, ...args] = cmd.argv;
  if (command === undefined) throw new Error('empty argv');
  const child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$@"', 'sh', command, ...args], {
    env: { ...cmd.env, LISTEN_FDS: '1', LISTEN_FDNAMES: cmd.fdName },
    // dup2(HELD_FD, 3) in the child: the socket lands on SD_LISTEN_FDS_START.
    stdio: ['ignore', 'pipe', 'pipe', HELD_FD],
  });
  const { stdout, stderr } = child;
  if (child.pid === undefined || !stdout || !stderr) throw new Error(`could not spawn ${command}`);
  children.add(child);
  send({ id: cmd.id, type: 'pid', pid: child.pid });
  createInterface({ input: stdout }).on('line', (line) => send({ id: cmd.id, type: 'line', line }));
  stderr.setEncoding('utf8');
  stderr.on('data', (text: string) => send({ id: cmd.id, type: 'stderr', text }));
  child.once('close', (code, signal) => {
    children.delete(child);
    send({ id: cmd.id, type: 'exit', code, signal });
  });
}

process.on('message', (cmd: SupervisorCommand) => {
  if (cmd.op === 'spawn') start(cmd);
});
process.on('disconnect', () => {
  for (const child of children) child.kill('SIGKILL');
  process.exit(0);
});
