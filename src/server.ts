/**
 * @module server
 * Wires the process-level pieces together: the runtime, the listeners
 * (server/listeners.ts, server/role-servers.ts), the connection cap and
 * drain bookkeeping (server/connections.ts), reload (server/reload.ts), the
 * drain (server/drain.ts), signals (server/signals.ts) and sd_notify.
 * Must not: handle a proxy request itself (handler.ts does), or grow logic
 * of its own: each concern has its module.
 */
import type http from 'node:http';
import { createAdminHandler } from './admin.js';
import { openCache, type Cache } from './cache/cache.js';
import type { CacheStore } from './cache/store.js';
import type { Config } from './config/schema.js';
import { watchConfigFile } from './config/watch.js';
import { gprError } from './errors.js';
import { createHandler } from './handler.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { buildRuntime, RuntimeRef, upstreamAvailable } from './runtime.js';
import { healthReporter } from './server/upstream-health.js';
import { createConnections } from './server/connections.js';
import { drain } from './server/drain.js';
import { defaultMaxConnections, openFileLimit } from './server/limits.js';
import { listenerUrl, openListeners, type Listener } from './server/listeners.js';
import { createReloader, type ReloadResult } from './server/reload.js';
import { applyLimits, roleServers } from './server/role-servers.js';
import { handleSignals } from './server/signals.js';
import { createNotifier } from './systemd/notify.js';
import { listenTargets, type ListenTarget } from './systemd/sockets.js';
import { applyClientAuth, loadTlsMaterial, tlsFiles, type TlsMaterial } from './tls/material.js';

export { IDLE_GRACE_MS } from './server/drain.js';
export { MAX_HEADER_BYTES } from './server/role-servers.js';
export type { Listener, ReloadResult };

/** Backend sockets per runtime (upstream/forward.ts's agent), for the default connection cap. */
const BACKEND_SOCKETS = 256;

export interface StartOptions {
  config: Config;
  /** Re-read on every reload; without it a reload re-applies `config`. */
  configPath?: string;
  /** Environment: LISTEN_FDS, NOTIFY_SOCKET, GPR_* overrides. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * Where to listen. Default: the sockets systemd passed (LISTEN_FDS in
   * `env`), else `config.listen`. A process started by a primary passes the
   * targets it was handed.
   */
  listenTargets?: readonly ListenTarget[];
  /** Default: pino on stdout at config.log.level. */
  logger?: Logger;
  /**
   * When set, installs SIGHUP (reload) and SIGTERM/SIGINT (drain, then
   * `exit(0)`; a second signal: `exit(1)` at once) before READY=1 is sent.
   */
  exit?: (code: number) => void;
  /** Clock for cache freshness, in ms; injectable for tests. Default Date.now. */
  now?: () => number;
}

export interface ProxyServer {
  readonly listeners: Listener[];
  /** "http://127.0.0.1:PORT" of the first listener of `role`. */
  url(role: ListenTarget['role']): string;
  readonly runtime: RuntimeRef;
  /** The memory tier (cache.memory). */
  readonly store: CacheStore;
  /** Both tiers, the fills and the status counts. */
  readonly cache: Cache;
  readonly metrics: Metrics;
  readonly log: Logger;
  /**
   * Re-reads the config (or takes `config`, already validated: a worker gets
   * it from its supervisor) and swaps in a new runtime; on failure the old
   * one keeps serving.
   */
  reload(config?: Config): Promise<ReloadResult>;
  /** Stops accepting, lets responses finish sending (up to shutdown.drainTimeoutMs), closes. */
  close(): Promise<void>;
}

/** Starts the proxy with `opts.config`; resolves once every listener serves. */
export async function startServer(opts: StartOptions): Promise<ProxyServer> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? createLogger({ level: opts.config.log.level });
  const notifier = createNotifier(env, { onError: (err) => log.warn({ err: err.message }, 'sd_notify failed') });
  const cache = await openCache(
    opts.config.cache,
    {
      warn: (fields, msg) => log.warn(fields, msg),
      onIndexed: (report) => log.info({ dir: opts.config.cache.dir, ...report }, 'cache indexed'),
    },
    opts.now,
  );
  const store = cache.memory;
  const metrics = createMetrics(cache);
  const targets = opts.listenTargets ?? listenTargets(opts.config.listen, env, process.pid);
  const wantsTls = targets.some((t) => t.role === 'https');
  const runtime = new RuntimeRef(buildRuntime(opts.config, 1, wantsTls ? await loadTlsMaterial(opts.config.tls, log) : undefined, healthReporter(log, metrics, env)));
  metrics.generation.set(1);
  let draining = false;
  let graceOver = false;

  const fdLimit = openFileLimit();
  const maxConnections = () => runtime.current.config.limits.maxConnections ?? defaultMaxConnections(fdLimit, BACKEND_SOCKETS);
  let lastRefusalLog = 0;
  const connections = createConnections({
    maxConnections,
    onRefused(open) {
      metrics.connectionsRefused.inc();
      if (Date.now() - lastRefusalLog < 60_000) return;
      lastRefusalLog = Date.now();
      log.warn({ err: gprError('GPR_ERR_TOO_MANY_CONNECTIONS', [open]).code, open, maxConnections: maxConnections() }, 'connection refused: limits.maxConnections reached');
    },
  });
  metrics.trackConnections(() => connections.open, maxConnections);

  const handleRequest = createHandler({ runtime, cache, log, metrics, draining: () => draining });
  const proxy = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    connections.busy(req, res, () => {
      if (graceOver) connections.closeIdle();
    });
    handleRequest(req, res);
  };
  const admin = createAdminHandler({ metrics, ready: () => !draining, upstreamsAvailable: () => upstreamAvailable(runtime.current), cache });
  let listeners: Listener[];
  try {
    listeners = await openListeners(targets, roleServers({ runtime, log, metrics, connections, proxy, admin }), log);
  } catch (err) {
    runtime.closeAll();
    throw err;
  }
  // role-servers.ts applied the first runtime's client CA; each reload compares with the last one applied.
  let clientAuthFor = runtime.current.tls;
  const servers = (admin: boolean) => listeners.filter((l) => (l.role === 'admin') === admin).map((l) => l.server as http.Server);

  const reloader = createReloader({
    configPath: opts.configPath,
    env,
    runtime,
    cache,
    log,
    metrics,
    notifier,
    wantsTls,
    listen: opts.config.listen,
    onApplied: (config) => {
      servers(false).forEach((s) => applyLimits(s, config.limits));
      clientAuthFor = applyClientAuthTo(listeners, runtime.current.tls, clientAuthFor);
      if (JSON.stringify(config.reload) !== JSON.stringify(opts.config.reload)) log.warn({ reload: config.reload }, 'reload settings changed: they take effect on restart');
    },
    statusLine,
  });
  function statusLine(): string {
    const s = cache.counts;
    const served = s.hits + s.misses + s.stale + s.bypass;
    const ratio = served ? ((s.hits / served) * 100).toFixed(1) : '0.0';
    return `config generation ${runtime.current.generation}; cache ${store.entries} entries, ${store.sizeBytes} bytes; hit ratio ${ratio}%; last reload: ${reloader.last()}`;
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    draining = true;
    stopWatching?.();
    closing ??= drain({
      proxyServers: servers(false),
      adminServers: servers(true),
      connections,
      runtime,
      log,
      notifier,
      cache,
      pendingReload: reloader.pending,
      onGraceOver: () => (graceOver = true),
    });
    return closing;
  };

  if (opts.exit) handleSignals({ reload: reloader.reload, close, exit: opts.exit, log });
  // reload.watch: the file's changes run the same reload as SIGHUP (set at start; a reload that changes it warns).
  const watchPath = opts.config.reload.watch ? opts.configPath : undefined;
  const stopWatching = watchPath === undefined ? undefined : watchConfigFile({
    path: watchPath,
    debounceMs: opts.config.reload.debounceMs,
    pollMs: opts.config.reload.pollMs,
    alsoWatch: () => tlsFiles(runtime.current.config.tls),
    onChange: () => {
      log.info({ path: watchPath }, 'config file changed');
      return reloader.reload();
    },
    onWatchError: (err) => log.warn({ path: watchPath, err: err.message }, 'config directory watch failed: polling only'),
  });
  notifier.ready(statusLine());
  notifier.startWatchdog();

  return { listeners, url: (role) => listenerUrl(listeners, role), runtime, store, cache, metrics, log, reload: reloader.reload, close };
}

/** tls.clientCa on the HTTPS listeners for the runtime's TLS material; returns it, to compare on the next reload. */
function applyClientAuthTo(listeners: readonly Listener[], tls: TlsMaterial | undefined, previous: TlsMaterial | undefined): TlsMaterial | undefined {
  for (const l of listeners) if (l.role === 'https') applyClientAuth(l.server, tls, previous);
  return tls;
}
