/**
 * @module upstream/forward
 * The only importer of http-proxy: one GET to the backend over keep-alive
 * agents, with a connect timeout and a response-head timeout, returned as a
 * promise of the response head and body stream.
 * Must not: decide statuses for the client, cache, or touch the client's
 * request or response: the fetch is owned by a cache flight that may outlive
 * the client that started it.
 */
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import { gprError, type GprError } from '../errors.js';

/** What the backend answered: head and a body stream to consume. */
export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: IncomingMessage;
  /** Destroys the connection (the body stops). */
  abort(err?: Error): void;
}

export interface Upstream {
  /** Backend origin and prefix, for logs and messages ("http://cache:3000"). */
  readonly label: string;
  /**
   * GETs `path` (already rewritten, prefix included). Rejects with a GprError:
   * GPR_ERR_UPSTREAM_TIMEOUT (connect or head timeout) or
   * GPR_ERR_UPSTREAM_UNREACHABLE.
   */
  fetch(path: string, headers: OutgoingHttpHeaders): Promise<UpstreamResponse>;
  /** Closes idle keep-alive sockets; in-flight requests finish. */
  close(): void;
}

export interface UpstreamOptions {
  /** Backend base URL; its path is not used here (rewrite/rules.ts adds it). */
  url: string;
  /** Connect timeout in ms. */
  connectMs: number;
  /** Time to the response head in ms. */
  responseMs: number;
  /** Max sockets per backend; default 256. */
  maxSockets?: number;
}

/**
 * http-proxy wants the client's IncomingMessage, which it pipes into the
 * backend request and whose 'aborted' event cancels it. A cache flight must
 * not die with the client that happened to start it (the other waiters still
 * want the bytes), so each fetch hands http-proxy this small stand-in: no body
 * (we pass `buffer`), never aborted, and a socket that is never destroyed.
 */
class FetchRequest extends EventEmitter {
  readonly method = 'GET';
  readonly httpVersion = '1.1';
  readonly socket = { destroyed: false };
  readonly connection = this.socket;
  constructor(
    readonly url: string,
    readonly headers: OutgoingHttpHeaders,
  ) {
    super();
  }
}

/** Creates the backend client for one runtime (one set of agents). */
export function createUpstream(opts: UpstreamOptions): Upstream {
  const target = new URL(opts.url);
  const secure = target.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const label = `${target.protocol}//${target.host}`;
  const proxy = httpProxy.createProxyServer({
    target: { protocol: target.protocol, host: target.hostname, port: target.port || (secure ? '443' : '80') },
    agent,
    changeOrigin: true,
    selfHandleResponse: true,
    xfwd: false,
  });

  type Pending = { resolve: (r: UpstreamResponse) => void; fail: (e: GprError) => void; proxyReq?: http.ClientRequest };
  const pending = new WeakMap<FetchRequest, Pending>();

  proxy.on('proxyReq', (proxyReq: http.ClientRequest, req: unknown) => {
    const p = pending.get(req as FetchRequest);
    if (!p) return;
    p.proxyReq = proxyReq;
    proxyReq.once('socket', (socket) => {
      if (!socket.connecting) return; // a reused keep-alive socket
      const connectTimer = setTimeout(() => {
        const err = gprError('GPR_ERR_UPSTREAM_TIMEOUT', [label, opts.connectMs]);
        p.fail(err);
        proxyReq.destroy(err);
      }, opts.connectMs);
      socket.once('connect', () => clearTimeout(connectTimer));
      socket.once('close', () => clearTimeout(connectTimer));
    });
  });
  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: unknown) => {
    const p = pending.get(req as FetchRequest);
    if (!p) return proxyRes.destroy();
    const proxyReq = p.proxyReq;
    p.resolve({
      status: proxyRes.statusCode ?? 502,
      headers: proxyRes.headers,
      body: proxyRes,
      abort: (err) => {
        proxyRes.destroy(err);
        proxyReq?.destroy(err);
      },
    });
  });

  function fetch(path: string, headers: OutgoingHttpHeaders): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      const req = new FetchRequest(path, headers);
      let failure: GprError | undefined;
      const settle = () => {
        clearTimeout(headTimer);
        pending.delete(req);
      };
      const fail = (err: GprError) => {
        if (!pending.has(req)) return;
        failure = err;
        settle();
        reject(err);
      };
      const headTimer = setTimeout(() => {
        const err = gprError('GPR_ERR_UPSTREAM_TIMEOUT', [label, opts.responseMs]);
        const proxyReq = pending.get(req)?.proxyReq;
        fail(err);
        proxyReq?.destroy(err);
      }, opts.responseMs);
      pending.set(req, {
        resolve: (r) => {
          settle();
          resolve(r);
        },
        fail,
      });
      // http-proxy reads only `finished` of the response when selfHandleResponse is set.
      const res = { finished: false, headersSent: false };
      // `as never`: http-proxy's types want the client's request and response; see FetchRequest.
      proxy.web(req as never, res as never, { buffer: Readable.from([]) }, (err: Error) => {
        fail(failure ?? gprError('GPR_ERR_UPSTREAM_UNREACHABLE', [label, describe(err)], err));
      });
    });
  }

  return {
    label,
    fetch,
    close() {
      agent.destroy();
      proxy.close();
    },
  };
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}
