/**
 * @module upstream/forward
 * One GET to one backend on an undici `Pool` through `dispatch` (no
 * fetch()/request() wrappers), with a connect timeout and a response-head
 * timeout, returned as a promise of the response head and a body stream with
 * backpressure. undici replaced http-proxy and node:http here because it
 * costs ~40% less CPU per fetch: the README's "Forwarding engine" has the
 * numbers (bench/forward-micro.ts).
 * Must not: decide statuses for the client, walk a chain (upstream/chain.ts),
 * cache, or touch the client's request or response: the fetch is owned by a
 * cache flight that may outlive the client that started it.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { buildConnector, Pool, type Dispatcher } from 'undici';
import { gprError, type GprError } from '../errors.js';

/** What the backend answered: head and a body stream to consume. */
export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** Stops the transfer (the body errors with `err`). */
  abort(err?: Error): void;
}

export interface Upstream {
  /** Backend origin, for logs and messages ("http://cache:3000"). */
  readonly label: string;
  /**
   * GETs `path` (already rewritten, prefix included). Rejects with a GprError:
   * GPR_ERR_UPSTREAM_TIMEOUT (connect or head timeout) or
   * GPR_ERR_UPSTREAM_UNREACHABLE.
   */
  fetch(path: string, headers: OutgoingHttpHeaders): Promise<UpstreamResponse>;
  /** Closes the pool once in-flight requests are done. */
  close(): void;
}

export interface UpstreamOptions {
  /** Backend base URL; its path is not used here (rewrite/rules.ts adds it). */
  url: string;
  /** Connect timeout in ms. */
  connectMs: number;
  /** Time to the response head in ms. */
  responseMs: number;
  /** Most connections to this backend (the pool size); default 256. */
  maxSockets?: number;
  /** Headers added to every request (auth): they win over `headers` of a fetch. */
  extraHeaders?: OutgoingHttpHeaders;
}

/** Set while an ECONNRESET is being dispatched to undici's socket listeners (see the connector). */
let resetting = false;

/** Creates the backend client for one runtime (one pool). */
export function createUpstream(opts: UpstreamOptions): Upstream {
  const target = new URL(opts.url);
  const label = `${target.protocol}//${target.host}`;
  const connector = buildConnector({ timeout: opts.connectMs });
  // Responses whose parser is paused because their body stream is full. undici
  // (7.30, and 8.13 for keep-alive) mishandles a FIN read while a parser is
  // paused on the span that ends the body: a keep-alive answer fails with
  // "other side closed", and a close-delimited one throws an uncaught
  // AssertionError in the socket's 'end' listener (a dead process). At 'end'
  // a paused parser has nothing left to parse (unparsed bytes would still be
  // in the socket's buffer), so resuming it first costs no memory: the
  // response of the ending socket completes, the others pause again later.
  // While resuming, a chunk pushed into a still-full body must not pause the
  // parser again. test/integration/upstream-forward.test.ts shows both.
  const paused = new Set<Dispatcher.DispatchController>();
  let resuming = false;
  const resumePaused = () => {
    resuming = true;
    for (const controller of paused) controller.resume();
    paused.clear();
    resuming = false;
  };
  const pool = new Pool(target.origin, {
    connections: opts.maxSockets ?? 256,
    pipelining: 1,
    connect: (connectOpts, callback) =>
      connector(connectOpts, (err, socket) => {
        // undici ends a close-delimited body (no Content-Length, not chunked)
        // when the connection is reset, as if the backend had closed it
        // cleanly (client-h1.js onHttpSocketError, for macOS). A reset proves
        // nothing about completeness, so note it: its listener runs
        // synchronously around undici's, and onResponseEnd below then cuts
        // the body instead of ending it.
        socket?.prependListener('error', (e: NodeJS.ErrnoException) => {
          if (e.code !== 'ECONNRESET') return;
          resetting = true;
          process.nextTick(() => (resetting = false));
        });
        socket?.prependListener('end', resumePaused);
        callback(err, socket as never);
      }),
    headersTimeout: opts.responseMs,
    // The cache flight times body pauses itself (timeouts.responseMs), and a
    // slow client pausing the body must not count as a stalled backend.
    bodyTimeout: 0,
  });
  const extra = Object.entries(opts.extraHeaders ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [k.toLowerCase(), String(v)]));
  const extraNames = new Set(extra.filter((_, i) => i % 2 === 0));

  function flatten(headers: OutgoingHttpHeaders): string[] {
    const flat: string[] = [];
    for (const k in headers) {
      const v = headers[k];
      if (v !== undefined && !extraNames.has(k)) flat.push(k, typeof v === 'string' ? v : String(v));
    }
    for (const v of extra) flat.push(v);
    return flat;
  }

  function fetch(path: string, headers: OutgoingHttpHeaders): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      let body: Readable | undefined;
      let ended = false;
      const handler: Dispatcher.DispatchHandler = {
        // Its presence tells undici this handler speaks the controller API.
        onRequestStart() {},
        onResponseStart(controller, status, resHeaders) {
          if (status < 200) return; // 1xx informational
          body = new Readable({
            read: () => {
              paused.delete(controller);
              controller.resume();
            },
            destroy(err, cb) {
              paused.delete(controller);
              if (!ended && !controller.aborted) controller.abort(err ?? gprError('GPR_ERR_CLIENT_GONE'));
              cb(err);
            },
          });
          resolve({ status, headers: resHeaders, body, abort: (err) => controller.abort(err ?? gprError('GPR_ERR_CLIENT_GONE')) });
        },
        onResponseData(controller, chunk) {
          if ((body as Readable).push(chunk) || resuming) return;
          controller.pause();
          paused.add(controller);
        },
        onResponseEnd(controller) {
          paused.delete(controller);
          if (resetting) return void body?.destroy(gprError('GPR_ERR_UPSTREAM_BODY', [label, 'the connection was reset before a close-delimited body was proven complete']));
          ended = true;
          body?.push(null);
        },
        onResponseError(controller, err) {
          paused.delete(controller);
          if (body) body.destroy(err);
          else reject(toGprError(err));
        },
      };
      pool.dispatch({ path, method: 'GET', headers: flatten(headers) }, handler);
    });
  }

  function toGprError(err: Error): GprError {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return gprError('GPR_ERR_UPSTREAM_TIMEOUT', [label, opts.connectMs], err);
    if (code === 'UND_ERR_HEADERS_TIMEOUT') return gprError('GPR_ERR_UPSTREAM_TIMEOUT', [label, opts.responseMs], err);
    return gprError('GPR_ERR_UPSTREAM_UNREACHABLE', [label, code && !err.message.includes(code) ? `${code} ${err.message}` : err.message], err);
  }

  return {
    label,
    fetch,
    close() {
      pool.close().catch(() => undefined);
    },
  };
}
