/**
 * @module server
 * Owns the process-level pieces: listeners (adopted from systemd or bound
 * here), the HTTPS server with per-name certificates, the admin listener,
 * the runtime swap on reload, signals, sd_notify and the drain on stop.
 * Must not: handle a proxy request itself (handler.ts does).
 */
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createAdminHandler } from './admin.js';
import { CacheStore } from './cache/store.js';
import { loadConfig } from './config/load.js';
import { watchConfigFile } from './config/watch.js';
import type { Config } from './config/schema.js';
import { errorTable, isGprError } from './errors.js';
import { createHandler } from './handler.js';
import { accessLog, announce, createLogger, lifecycle, type Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { buildRuntime, RuntimeRef } from './runtime.js';
import { createNotifier, type Notifier } from './systemd/notify.js';
import { listenOn, listenTargets, type ListenTarget } from './systemd/sockets.js';
import { applyClientAuth, loadTlsMaterial } from './tls/material.js';

/** Request header limit; larger requests get 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** While draining, how long an idle keep-alive connection may still send a request, in ms. */
export const IDLE_GRACE_MS = 1000;

export interface StartOptions {
  config: Config;
  /** Re-read on every reload; without it a reload re-applies `config`. */
  configPath?: string;
  /** Environment: LISTEN_FDS, NOTIFY_SOCKET, GPR_* overrides. Default process.env. */
  env?: NodeJS.ProcessEnv;
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

export interface Listener {
  role: ListenTarget['role'];
  server: Server;
  address: AddressInfo | string;
}

export type ReloadResult = { ok: true; generation: number } | { ok: false; error: Error };

export interface ProxyServer {
  readonly listeners: Listener[];
  /** "http://127.0.0.1:PORT" of the first listener of `role`. */
  url(role: ListenTarget['role']): string;
  readonly runtime: RuntimeRef;
  readonly store: CacheStore;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Re-reads the config and swaps in a new runtime; on failure the old one keeps serving. */
  reload(): Promise<ReloadResult>;
  /** Stops accepting, lets requests finish (up to shutdown.drainTimeoutMs), closes. */
  close(): Promise<void>;
}

/** Starts the proxy with `opts.config`; resolves once every listener serves. */
export async function startServer(opts: StartOptions): Promise<ProxyServer> {
  const env = opts.env ?? process.env;
  const log = opts.logger ?? createLogger({ level: opts.config.log.level });
  const notifier: Notifier = createNotifier(env, { onError: (err) => log.warn({ err: err.message }, 'sd_notify failed') });
  const store = new CacheStore({ maxBytes: opts.config.cache.maxBytes, maxEntryBytes: opts.config.cache.maxEntryBytes, now: opts.now });
  const metrics = createMetrics(store);
  const targets = listenTargets(opts.config.listen, env, process.pid);
  const wantsTls = targets.some((t) => t.role === 'https');
  let generation = 1;
  const runtime = new RuntimeRef(buildRuntime(opts.config, generation, wantsTls ? await loadTlsMaterial(opts.config.tls, log) : undefined));
  metrics.generation.set(generation);
  let draining = false;
  let idleGraceOver = false;
  let lastReload = 'none';

  const handleRequest = createHandler({ runtime, store, log, metrics, draining: () => draining });
  // Responses in progress on the proxy listeners. A request that began before
  // the drain got no `Connection: close` from the handler; left alone, its
  // keep-alive connection would idle after the answer and hold the drain open
  // until drainTimeoutMs. close() adds the header to those whose head is not
  // sent yet; once the idle grace is over, each answer that ends closes the
  // connections gone idle (those whose head went out before the drain).
  const responses = new Set<http.ServerResponse>();
  const proxyServers = () => listeners.filter((l) => l.role !== 'admin').map((l) => l.server as http.Server);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    responses.add(res);
    res.once('close', () => {
      responses.delete(res);
      if (idleGraceOver) for (const s of proxyServers()) s.closeIdleConnections();
    });
    handleRequest(req, res);
  };
  const admin = createAdminHandler({ metrics, ready: () => !draining });
  const refusedNames = new Set<string>();

  const serverOptions = { maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: 60_000, requestTimeout: 60_000 };
  function createRoleServer(role: ListenTarget['role']): Server {
    if (role === 'admin') return http.createServer(serverOptions, admin);
    if (role === 'http') return withClientErrors(http.createServer(serverOptions, handler));
    const server = https.createServer(
      {
        ...serverOptions,
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.3',
        // The go command offers h2 and http/1.1 and works with either.
        ALPNProtocols: ['http/1.1'],
        SNICallback(servername, cb) {
          const context = runtime.current.tls?.secureContext(servername);
          if (context) return cb(null, context);
          refuse(servername, 'name_not_allowed');
          cb(new Error(errorTable.GPR_ERR_TLS_NAME_REFUSED.message.replace('%s', servername)));
        },
      },
      handler,
    );
    server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      // A ClientHello without SNI gets no certificate (there is no default one).
      // (TLS 1.3 reports it as no signature algorithm, TLS 1.2 as no cipher.)
      if (!socket.servername && /^ERR_SSL_NO_(SHARED_CIPHER|SUITABLE_SIGNATURE_ALGORITHM)$/.test(err.code ?? '')) refuse('(no SNI)', 'no_sni');
      // tls.clientCa: no certificate fails the handshake; one that does not verify is cut right after it.
      const clientCert = err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' ? 'missing' : socket.authorizationError;
      if (!clientCert) return;
      const peer = socket.remoteAddress ?? (socket as TLSSocket & { _parent?: Socket })._parent?.remoteAddress ?? '?';
      refuse(`${peer} ${clientCert}`, 'client_cert', { peer, problem: clientCert, err: 'GPR_ERR_TLS_CLIENT_CERT_REFUSED' });
    });
    // A TLS socket cut after a failed client-certificate check has lost its
    // handle when tlsClientError reports it: reading the raw socket's address
    // now caches it there (net.Socket keeps _peername).
    server.on('connection', (raw: Socket) => void raw.remoteAddress);
    applyClientAuth(server, runtime.current.tls, undefined);
    return withClientErrors(server);
  }

  /** Counted every time, logged once per name so a scanner cannot flood the journal. */
  function refuse(name: string, reason: string, fields: object = { servername: name }): void {
    metrics.tlsRefused.inc({ reason });
    if (refusedNames.has(name) || refusedNames.size >= 1000) return;
    refusedNames.add(name);
    log.warn({ ...fields, reason }, 'tls handshake refused');
  }

  /** Answers unparseable requests (oversized headers, bad syntax) with text/plain and an access line. */
  function withClientErrors(server: Server): Server {
    server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
      const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
      const code = tooLarge ? 'GPR_ERR_HEADERS_TOO_LARGE' : 'GPR_ERR_BAD_REQUEST';
      const status = errorTable[code].status;
      const body = `go-proxy-rewriter: ${tooLarge ? `request headers are larger than ${MAX_HEADER_BYTES} bytes` : `malformed HTTP request: ${err.code ?? err.message}`}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
      );
      accessLog(log, { reqId: '-', method: '', host: '', path: '', upstreamPath: null, status, cache: null, bytes: Buffer.byteLength(body), durationMs: 0, upstreamMs: null, err: code });
    });
    return server;
  }

  const listeners: Listener[] = [];
  try {
    for (const target of targets) {
      const server = createRoleServer(target.role);
      await listenOn(server, target);
      const address = server.address() as AddressInfo | string;
      listeners.push({ role: target.role, server, address });
      announce(log, 'info', { role: target.role, address: typeof address === 'string' ? address : `${address.address}:${address.port}`, fd: 'fd' in target ? target.fd : undefined }, lifecycle.listening);
    }
  } catch (err) {
    for (const l of listeners) l.server.close();
    runtime.closeAll();
    throw err;
  }

  function statusLine(): string {
    const s = store.stats;
    const served = s.hits + s.misses + s.stale + s.bypass;
    const ratio = served ? ((s.hits / served) * 100).toFixed(1) : '0.0';
    return `config generation ${runtime.current.generation}; cache ${store.entries} entries, ${store.sizeBytes} bytes; hit ratio ${ratio}%; last reload: ${lastReload}`;
  }

  let reloading: Promise<ReloadResult> | undefined;
  let reloadAgain = false;
  async function reloadOnce(): Promise<ReloadResult> {
    notifier.reloading();
    try {
      const config = opts.configPath ? await loadConfig(opts.configPath, env) : runtime.current.config;
      const tls = wantsTls ? await loadTlsMaterial(config.tls, log) : undefined;
      const next = buildRuntime(config, generation + 1, tls);
      generation += 1;
      const prev = runtime.swap(next);
      for (const l of listeners) if (l.role === 'https') applyClientAuth(l.server, next.tls, prev.tls);
      store.resize(config.cache.maxBytes, config.cache.maxEntryBytes);
      log.level = config.log.level;
      if (JSON.stringify(config.listen) !== JSON.stringify(opts.config.listen)) {
        log.warn({ listen: config.listen }, 'listen addresses changed: they take effect on restart');
      }
      if (JSON.stringify(config.reload) !== JSON.stringify(opts.config.reload)) log.warn({ reload: config.reload }, 'reload settings changed: they take effect on restart');
      metrics.reloads.inc({ result: 'ok' });
      metrics.generation.set(generation);
      lastReload = `ok (generation ${generation})`;
      announce(log, 'info', { generation, upstream: config.upstream, rewrite: config.rewrite }, lifecycle.reloaded);
      return { ok: true, generation };
    } catch (err) {
      const error = err as Error;
      metrics.reloads.inc({ result: 'failed' });
      lastReload = `failed: ${isGprError(error) ? error.code : error.message}`;
      announce(log, 'error', { err: { code: isGprError(error) ? error.code : undefined, message: error.message } }, lifecycle.reloadFailed);
      return { ok: false, error };
    } finally {
      notifier.ready(statusLine());
    }
  }

  /** Reloads never overlap; signals that arrive during one cause one more pass. */
  function reload(): Promise<ReloadResult> {
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      let result: ReloadResult;
      do {
        reloadAgain = false;
        result = await reloadOnce();
      } while (reloadAgain);
      reloading = undefined;
      return result;
    })();
    return reloading;
  }

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      draining = true;
      stopWatching?.();
      // A reload under way finishes first, so its READY=1 is not cut off by STOPPING=1.
      if (reloading) await reloading;
      notifier.stopping();
      notifier.stopWatchdog();
      announce(log, 'info', { inFlight: runtime.inFlight }, lifecycle.draining);
      // The admin listener stays up until the proxy listeners have drained,
      // so /readyz answers 503 meanwhile instead of refusing connections.
      const servers = proxyServers();
      const adminServers = listeners.filter((l) => l.role === 'admin').map((l) => l.server as http.Server);
      // net.Server's close(), not http.Server's, which also closes the idle
      // keep-alive connections at once: a request already on its way on one
      // would be reset unread. They get IDLE_GRACE_MS to send one more,
      // answered with Connection: close; then the idle ones are closed.
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => net.Server.prototype.close.call(s, () => resolve()))));
      for (const res of responses) if (!res.headersSent) res.setHeader('connection', 'close');
      const idleTimer = setTimeout(() => {
        idleGraceOver = true;
        for (const s of servers) s.closeIdleConnections();
      }, IDLE_GRACE_MS);
      const timeoutMs = runtime.current.config.shutdown.drainTimeoutMs;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        closed.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      clearTimeout(idleTimer);
      if (timedOut) {
        log.warn({ inFlight: runtime.inFlight, timeoutMs }, 'drain timed out: closing the remaining connections');
        for (const s of servers) s.closeAllConnections();
        await closed;
        // The server's 'close' comes before its sockets' (and so the cut
        // requests') 'close' events: let those log their 499 before the
        // backend clients close under them and turn them into 404s.
        const deadline = Date.now() + 1000;
        while (runtime.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(
        adminServers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeAllConnections();
            }),
        ),
      );
      runtime.closeAll();
      // Messages go out one at a time; exiting before the queue is empty would drop STOPPING=1.
      await notifier.close();
      log.info({}, lifecycle.stopped);
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    })();
    return closing;
  }

  function handleSignals(exit: (code: number) => void): void {
    process.on('SIGHUP', () => void reload());
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting at once');
        log.flush();
        return exit(1);
      }
      stopping = true;
      close().then(
        () => exit(0),
        () => exit(1),
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  }

  if (opts.exit) handleSignals(opts.exit);
  // reload.watch: the file's changes run the same reload as SIGHUP (set at start; a reload that changes it warns).
  const watchPath = opts.config.reload.watch ? opts.configPath : undefined;
  const stopWatching = watchPath === undefined ? undefined : watchConfigFile({
    path: watchPath,
    debounceMs: opts.config.reload.debounceMs,
    pollMs: opts.config.reload.pollMs,
    onChange: () => {
      log.info({ path: watchPath }, 'config file changed');
      return reload();
    },
    onWatchError: (err) => log.warn({ path: watchPath, err: err.message }, 'config directory watch failed: polling only'),
  });
  notifier.ready(statusLine());
  notifier.startWatchdog();

  return {
    listeners,
    url(role) {
      const l = listeners.find((x) => x.role === role);
      if (!l) throw new Error(`no ${role} listener`);
      if (typeof l.address === 'string') return `unix:${l.address}`;
      const host = l.address.family === 'IPv6' ? `[${l.address.address}]` : l.address.address;
      return `${role === 'https' ? 'https' : 'http'}://${host}:${l.address.port}`;
    },
    runtime,
    store,
    metrics,
    log,
    reload,
    close,
  };
}
