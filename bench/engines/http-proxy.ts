/**
 * @module bench/engines/http-proxy
 * The fill path's fetch as it was before the node:http engine replaced it,
 * kept for bench/forward-micro.ts (run `npm install --no-save http-proxy`
 * first: it is no dependency of the proxy any more). The only importer of http-proxy: one GET to the backend over keep-alive
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
import { gprError, type GprError } from '../../src/errors.js';

import type { Upstream, UpstreamOptions, UpstreamResponse } from '../../src/upstream/forward.js';

/** The part of http-proxy used here (it is no dependency any more, so no @types). */
interface ProxyServer {
  on(event: string, listener: (...args: never[]) => void): void;
  web(req: unknown, res: unknown, opts: object, cb: (err: Error) => void): void;
  close(): void;
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
export async function createUpstream(opts: UpstreamOptions): Promise<Upstream> {
  const name = 'http-proxy'; // computed: typecheck must not resolve a package that is not installed
  const httpProxy = ((await import(name)) as { default: { createProxyServer(o: object): ProxyServer } }).default;
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
      proxy.web(req, res, { buffer: Readable.from([]) }, (err: Error) => {
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
