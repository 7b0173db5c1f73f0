/**
 * @module bench/engines/node-http
 * The fill path's fetch on `node:http` with a tuned keep-alive agent: the
 * second candidate of bench/forward-micro.ts (src/upstream/forward.ts uses
 * undici; see the README's "Forwarding engine").
 * Must not: decide statuses for the client, walk a chain (upstream/chain.ts),
 * cache, or touch the client's request or response: the fetch is owned by a
 * cache flight that may outlive the client that started it.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { gprError, type GprError } from '../../src/errors.js';

import type { Upstream, UpstreamOptions, UpstreamResponse } from '../../src/upstream/forward.js';

/** Creates the backend client for one runtime (one agent). */
export function createNodeHttpUpstream(opts: UpstreamOptions): Upstream {
  const target = new URL(opts.url);
  const secure = target.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 256, maxFreeSockets: 64, scheduling: 'lifo' as const };
  const agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  const request = secure ? https.request : http.request;
  const label = `${target.protocol}//${target.host}`;
  const hostname = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const port = Number(target.port || (secure ? 443 : 80));
  const extra = opts.extraHeaders && Object.keys(opts.extraHeaders).length > 0 ? opts.extraHeaders : undefined;

  function fetch(path: string, headers: OutgoingHttpHeaders): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (err: GprError) => {
        if (settled) return;
        settled = true;
        clearTimeout(headTimer);
        clearTimeout(connectTimer);
        reject(err);
        req.destroy(err);
      };
      const req = request(
        { host: hostname, port, path, method: 'GET', agent, headers: extra ? { ...headers, ...extra } : headers, servername: secure ? hostname : undefined },
        (res: IncomingMessage) => {
          if (settled) return void res.destroy();
          settled = true;
          clearTimeout(headTimer);
          resolve({
            status: res.statusCode ?? 502,
            headers: res.headers,
            body: res,
            abort: (err) => {
              res.destroy(err);
              req.destroy(err);
            },
          });
        },
      );
      const headTimer = setTimeout(() => fail(gprError('GPR_ERR_UPSTREAM_TIMEOUT', [label, opts.responseMs])), opts.responseMs);
      req.once('socket', (socket) => {
        if (!socket.connecting) return; // a reused keep-alive socket
        connectTimer = setTimeout(() => fail(gprError('GPR_ERR_UPSTREAM_TIMEOUT', [label, opts.connectMs])), opts.connectMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (err) => fail(gprError('GPR_ERR_UPSTREAM_UNREACHABLE', [label, describe(err)], err)));
      req.end();
    });
  }

  return {
    label,
    fetch,
    close() {
      agent.destroy();
    },
  };
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
}
