// Test helper: the test acting as systemd for a socket-activated service.
// Binds a listening TCP socket on 127.0.0.1 port 0 (the kernel picks; no
// port is picked and rebound), hands it to a supervisor process
// (fd-supervisor-main.ts) that holds it for the whole test, the way systemd
// holds a .socket unit's fd across service restarts, and starts proxies on
// it. Connections that arrive while no proxy accepts wait in the listen
// backlog. Must not: keep the socket open in the test process (it would
// accept on it too), or leave processes behind.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { cleanEnv, listeningFd, ROOT, serveArgv, watchProxy, type ChildProxy, type Exit } from './child-proxy.js';
import type { SupervisorCommand, SupervisorEvent } from './fd-supervisor-main.js';

/** A listening socket held by a supervisor process, and proxies started on it. */
export interface FdSupervisor {
  /** The port of the held socket on 127.0.0.1. */
  readonly port: number;
  /** Starts `node dist/src/main.js serve --config FILE` on the held socket, named `fdName` (default `http`). */
  spawnProxy(configPath: string, fdName?: string): Promise<ChildProxy>;
}

/** Binds a listening socket on 127.0.0.1 port 0. */
export async function bindLoopback(): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** Starts the supervisor with a fresh socket; it and its proxies are killed when the test ends. */
export async function startFdSupervisor(): Promise<FdSupervisor> {
  const server = await bindLoopback();
  const port = (server.address() as net.AddressInfo).port;
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/fd-supervisor-main.ts')], {
    cwd: ROOT,
    env: cleanEnv(),
    stdio: ['ignore', 'ignore', 'pipe', 'ipc', listeningFd(server)],
  });
  // From here on only the supervisor (and the proxies it starts) hold the socket.
  server.close();
  let supervisorStderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    supervisorStderr += text;
  });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await gone;
    }
  });

  interface Relay {
    onPid: (pid: number) => void;
    line?: (line: string) => void;
    stderr?: (text: string) => void;
    exit: (e: Exit) => void;
    /** Lines and stderr that arrived before the ChildProxy was attached. */
    lines: string[];
    stderrs: string[];
  }
  const relays = new Map<number, Relay>();
  child.on('message', (event: SupervisorEvent) => {
    const relay = relays.get(event.id);
    if (!relay) return;
    if (event.type === 'pid') return relay.onPid(event.pid);
    if (event.type === 'exit') {
      relays.delete(event.id);
      return relay.exit({ code: event.code, signal: event.signal });
    }
    if (event.type === 'line') return relay.line ? relay.line(event.line) : void relay.lines.push(event.line);
    return relay.stderr ? relay.stderr(event.text) : void relay.stderrs.push(event.text);
  });
  // A dead supervisor relays nothing more: settle every proxy it had.
  void gone.then(() => {
    for (const relay of relays.values()) relay.exit({ code: null, signal: null });
    relays.clear();
  });

  let ids = 0;
  return {
    port,
    async spawnProxy(configPath, fdName = 'http') {
      const id = ++ids;
      let exit!: (e: Exit) => void;
      const exited = new Promise<Exit>((resolve) => (exit = resolve));
      let onPid!: (pid: number) => void;
      const pidKnown = new Promise<number>((resolve) => (onPid = resolve));
      const relay: Relay = { onPid, exit, lines: [], stderrs: [] };
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`fd supervisor is gone; stderr:\n${supervisorStderr}`);
      relays.set(id, relay);
      const cmd: SupervisorCommand = { op: 'spawn', id, argv: serveArgv(configPath), env: cleanEnv(), fdName };
      child.send(cmd);
      const pid = await Promise.race([
        pidKnown,
        gone.then(() => Promise.reject(new Error(`fd supervisor exited; stderr:\n${supervisorStderr}`))),
      ]);
      return watchProxy({
        pid,
        onLine(listener) {
          relay.line = listener;
          for (const line of relay.lines.splice(0)) listener(line);
        },
        onStderr(listener) {
          relay.stderr = listener;
          for (const text of relay.stderrs.splice(0)) listener(text);
        },
        exited,
      });
    },
  };
}
