/**
 * @module workers/worker
 * Entry of a worker process (forked by workers/supervisor.ts): waits for the
 * `start` message, serves the proxy listeners on the sockets it inherited
 * (startServer with `listenTargets`; no admin listener, no sd_notify, no
 * signal handling of the server's own), and answers the supervisor's
 * reload, metrics, ping, cache and stop messages. It never watches the
 * config file (it gets no path): the supervisor owns `reload.watch`.
 * Signals: SIGTERM/SIGINT drain and exit 0 like `stop` (systemd's default
 * KillMode sends SIGTERM to every process of the unit, a terminal's Ctrl-C to
 * the whole group); SIGHUP is ignored (the supervisor fans reloads out).
 * Must not: bind or own a socket, talk to systemd, or outlive its supervisor.
 */
import { isGprError } from '../errors.js';
import { createLogger } from '../log.js';
import { upstreamAvailable } from '../runtime.js';
import { startServer, type ProxyServer } from '../server.js';
import { isMessage, type FromWorker, type ToWorker } from './messages.js';

function send(message: FromWorker): void {
  process.send?.(message);
}

let server: ProxyServer | undefined;
let starting: Promise<void> | undefined;
let stopping: Promise<void> | undefined;

function stop(code = 0): void {
  stopping ??= (server ? server.close() : Promise.resolve()).then(
    () => process.exit(code),
    () => process.exit(1),
  );
}

async function start(message: Extract<ToWorker, { t: 'start' }>): Promise<void> {
  const log = createLogger({ level: message.config.log.level }).child({ worker: message.index });
  try {
    server = await startServer({
      config: message.config,
      env: {},
      logger: log,
      listenTargets: message.sockets.map((s) => ({ role: s.role, fd: s.fd })),
    });
  } catch (err) {
    const error = err as Error;
    log.error({ err: { code: isGprError(error) ? error.code : undefined, message: error.message } }, 'worker start failed');
    send({ t: 'failed', code: isGprError(error) ? error.code : undefined, message: error.message });
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    process.exit(1);
  }
  send({ t: 'ready', pid: process.pid });
}

async function onMessage(message: ToWorker): Promise<void> {
  switch (message.t) {
    case 'start':
      starting = start(message);
      return starting;
    case 'reload': {
      // A reload sent while this worker starts (a POST /reload during the supervisor's start) applies once it serves.
      await starting;
      if (!server) return;
      const result = await server.reload(message.config);
      const error = result.ok ? undefined : result.error;
      send(
        result.ok
          ? { t: 'reloaded', id: message.id, ok: true, generation: result.generation }
          : { t: 'reloaded', id: message.id, ok: false, code: error && isGprError(error) ? error.code : undefined, message: error?.message ?? 'unknown' },
      );
      return;
    }
    case 'metrics':
      if (server) send({ t: 'metrics', id: message.id, metrics: await server.metrics.registry.getMetricsAsJSON() });
      return;
    case 'ping':
      return send({ t: 'pong', id: message.id, upstreamsAvailable: server ? upstreamAvailable(server.runtime.current) : false });
    case 'cache': {
      if (!server) return send({ t: 'cache', id: message.id, ok: false, message: 'worker is starting' });
      const cache = server.cache;
      const { op, module, version } = message;
      try {
        const result = op === 'stats' ? cache.stats() : op === 'list' ? await cache.list(module) : await cache.purge(module ?? '', version);
        send({ t: 'cache', id: message.id, ok: true, result });
      } catch (err) {
        send({ t: 'cache', id: message.id, ok: false, message: (err as Error).message });
      }
      return;
    }
    case 'stop':
      return stop();
  }
}

process.on('message', (message: unknown) => {
  if (isMessage<ToWorker>(message)) void onMessage(message);
});
// The supervisor is gone (crashed or killed): nobody restarts us or owns the sockets; drain and go.
process.on('disconnect', () => stop());
process.on('SIGTERM', () => stop());
process.on('SIGINT', () => stop());
process.on('SIGHUP', () => undefined);
