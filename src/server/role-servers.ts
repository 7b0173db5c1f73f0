/**
 * @module server/role-servers
 * The server object of each listener role: plain HTTP and HTTPS (per-name
 * certificates, no client renegotiation) for proxy traffic, and the admin
 * server. Applies the limits (header timeout 408, keep-alive timeout,
 * connection cap) and answers what never reaches the handler (requests
 * Node's parser rejects, CONNECT) with an access line and an X-Request-Id.
 * Must not: handle a proxy request (handler.ts) or listen (server/listeners.ts).
 */
import { constants } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Server, Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Config } from '../config/schema.js';
import { errorTable, type ErrorCode } from '../errors.js';
import { accessLog, escapeControls, loggablePath, nextRequestId, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RuntimeRef } from '../runtime.js';
import { applyClientAuth } from '../tls/material.js';
import { clientErrorCode } from '../status.js';
import type { ListenRole } from '../systemd/sockets.js';
import type { Connections } from './connections.js';
import { h2Compatible } from './h2-compat.js';

/** Request header limit; larger requests get 431. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** How often Node checks the header and request timeouts, in ms (its default, 30 s, would make a 408 up to 30 s late). */
export const TIMEOUT_CHECK_MS = 500;

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface RoleServerDeps {
  runtime: RuntimeRef;
  log: Logger;
  metrics: Metrics;
  connections: Connections;
  /** The proxy request handler (http and https roles). */
  proxy: Handler;
  /** The admin handler. */
  admin: Handler;
}

/**
 * Method and path of a request the parser rejected, from the bytes it saw
 * (Node's `rawPacket`), for the access line; empty when there are none.
 */
export function requestLine(rawPacket: unknown): { method: string; host: string; path: string } {
  if (!Buffer.isBuffer(rawPacket)) return { method: '', host: '', path: '' };
  const text = rawPacket.toString('latin1', 0, Math.min(rawPacket.length, 8192));
  const end = text.indexOf('\r\n');
  const [method = '', target = ''] = (end === -1 ? text : text.slice(0, end)).split(' ');
  const host = /\r\nhost:[ \t]*([^\r\n]*)/i.exec(text)?.[1]?.trim() ?? '';
  return { method: escapeControls(method.slice(0, 32)), host: escapeControls(host.slice(0, 256)), path: escapeControls(loggablePath(target.slice(0, 4096))) };
}

/** Node's server timeouts from `limits`; applied at start and on every reload. */
export function applyLimits(server: http.Server, limits: Config['limits']): void {
  server.headersTimeout = limits.headersTimeoutMs;
  // requestTimeout must not be shorter than headersTimeout; a GET has no body to wait for.
  server.requestTimeout = Math.max(60_000, limits.headersTimeoutMs);
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
}

/** Returns a factory of the server for each role. */
export function roleServers(deps: RoleServerDeps): (role: ListenRole) => Server {
  const { runtime, log, metrics, connections } = deps;
  const refusedNames = new Set<string>();
  const serverOptions = { maxHeaderSize: MAX_HEADER_BYTES, connectionsCheckingInterval: TIMEOUT_CHECK_MS, requireHostHeader: false };

  /** Counted every time, logged once per name so a scanner cannot flood the journal. */
  function refuse(name: string, reason: string, fields: object = { servername: name }): void {
    metrics.tlsRefused.inc({ reason });
    if (refusedNames.has(name) || refusedNames.size >= 1000) return;
    refusedNames.add(name);
    log.warn({ ...fields, reason }, 'tls handshake refused');
  }

  /** Writes a complete text/plain answer on a raw socket and its access line, then closes. */
  function answerRaw(socket: Socket, code: ErrorCode, message: string, request: { method: string; host: string; path: string }): void {
    const status = errorTable[code].status;
    const reqId = nextRequestId();
    const body = `go-proxy-rewriter: ${message}\n`;
    const extra = code === 'GPR_ERR_METHOD_NOT_ALLOWED' ? 'allow: GET, HEAD\r\n' : '';
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-request-id: ${reqId}\r\n${extra}connection: close\r\n\r\n${body}`,
    );
    metrics.recordRequest(status, 'NONE', 0);
    const fields = { reqId, ...request, upstreamPath: null, status, cache: null, bytes: Buffer.byteLength(body), durationMs: 0, upstreamMs: null, err: code };
    accessLog(log, fields, runtime.current.config.log.access);
  }

  /** Answers unparseable or too slow requests, CONNECT, and tracks connections. */
  function proxyServer(server: http.Server, tls: boolean): Server {
    applyLimits(server, runtime.current.config.limits);
    connections.track(server, tls);
    server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      const inProgress = (socket as Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage;
      // Only HTTP-level problems get an answer: a socket or TLS error
      // (ECONNRESET, ERR_SSL_* such as a refused renegotiation) cannot carry one.
      const httpProblem = err.code?.startsWith('HPE_') || err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (!httpProblem || !socket.writable || inProgress?.headersSent) return socket.destroy();
      const code = clientErrorCode(err.code);
      const detail = code === 'GPR_ERR_HEADERS_TOO_LARGE' ? MAX_HEADER_BYTES : code === 'GPR_ERR_REQUEST_TIMEOUT' ? server.headersTimeout : (err.code ?? err.message);
      answerRaw(socket, code, errorTable[code].message.replace('%s', String(detail)), requestLine((err as { rawPacket?: unknown }).rawPacket));
    });
    // Without a listener Node drops a CONNECT without a word (and without an access line).
    server.on('connect', (req: http.IncomingMessage, socket: Socket) => {
      const message = errorTable.GPR_ERR_METHOD_NOT_ALLOWED.message.replace('%s', 'CONNECT');
      answerRaw(socket, 'GPR_ERR_METHOD_NOT_ALLOWED', message, { method: 'CONNECT', host: escapeControls(req.headers.host ?? ''), path: loggablePath(req.url ?? '') });
    });
    return server;
  }

  return function createRoleServer(role) {
    if (role === 'admin') return http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, deps.admin);
    if (role === 'http') return proxyServer(http.createServer(serverOptions, deps.proxy), false);
    const tlsOptions = {
      ...serverOptions,
      minVersion: 'TLSv1.2' as const,
      maxVersion: 'TLSv1.3' as const,
      // Client-initiated renegotiation (TLS 1.2) costs the server a
      // handshake per request of the client's choosing: refuse it.
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
      SNICallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) {
        const context = runtime.current.tls?.secureContext(servername);
        if (context) return cb(null, context);
        refuse(servername, 'name_not_allowed');
        cb(new Error(errorTable.GPR_ERR_TLS_NAME_REFUSED.message.replace('%s', servername)));
      },
    };
    // The go command offers h2 and http/1.1 and works with either; tls.http2
    // (read at start: listeners change on restart) offers both, h2 first.
    // The http2 server's HTTP/1.1 requests are http.IncomingMessage as usual;
    // h2Compatible adapts its HTTP/2 ones (node:http2's compatibility API).
    const server = runtime.current.config.tls.http2
      ? (http2.createSecureServer({ ...tlsOptions, allowHTTP1: true }, h2Compatible(deps.proxy) as never) as unknown as http.Server)
      : https.createServer({ ...tlsOptions, ALPNProtocols: ['http/1.1'] }, deps.proxy);
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
    return proxyServer(server, true);
  };
}
