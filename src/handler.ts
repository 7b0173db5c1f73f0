/**
 * @module handler
 * One request, top to bottom: take a runtime snapshot, parse the Go proxy
 * path, rewrite it, answer from the cache or join/start the backend fetch,
 * respond, and write the one access line.
 * Must not: own sockets or listeners (server.ts), or decide how a path is
 * parsed (goproxy/), rewritten (rewrite/) or cached (cache/).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { gprError, isGprError, type ErrorCode, type GprError } from './errors.js';
import { LRUCache } from 'lru-cache';
import { parseProxyPath, type ParseResult, type ProxyRequest } from './goproxy/path.js';
import { cacheKey, notModified, NO_STORE } from './cache/http.js';
import type { Answer, Cache, MissContext } from './cache/cache.js';
import type { CachedObject } from './cache/store.js';
import { accessLog, loggablePath, nextRequestId, type AccessFields, type Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { RuntimeRef, Runtime } from './runtime.js';
import type { Chain } from './upstream/chain.js';
import type { FailurePolicy } from './upstream/route.js';
import { errorStatus, finalStatus } from './status.js';

type CacheStatus = NonNullable<AccessFields['cache']>;

export interface HandlerDeps {
  runtime: RuntimeRef;
  cache: Cache;
  log: Logger;
  metrics: Metrics;
  /** True once the server drains: answers carry Connection: close. */
  draining: () => boolean;
}

/** Our name in Via; seeing it on an incoming request means a loop. */
const VIA_TOKEN = 'go-proxy-rewriter';

/**
 * A cached body larger than this is written in slices of this size, each
 * counted once the socket took it: a client that aborts is logged with the
 * bytes it was really sent, and a drain sees the response as busy until the
 * last slice is out. Smaller bodies go out in one write (the hot path).
 */
const SLICE_BYTES = 64 * 1024;

/** Creates the request handler for the proxy listeners. */
export function createHandler(deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { cache, log, metrics } = deps;
  const parsedPaths = new LRUCache<string, ParseResult>({ max: 10_000 });

  return function handleRequest(req, res) {
    const rt = deps.runtime.acquire();
    const started = performance.now();
    const fields: AccessFields = {
      reqId: nextRequestId(),
      method: req.method ?? '',
      host: req.headers.host ?? '',
      path: loggablePath(req.url ?? ''),
      upstreamPath: null,
      status: 0,
      cache: null,
      bytes: 0,
      durationMs: 0,
      upstreamMs: null,
      err: null,
    };
    // X-Request-Id goes on each answer where its head is written (a HIT's
    // header array takes it without the setHeader round trip: see
    // sendObject); while draining both headers are set here, once.
    const preset = deps.draining();
    if (preset) {
      res.setHeader('x-request-id', fields.reqId);
      res.setHeader('connection', 'close');
    }
    // 'close' comes once; on() spares once()'s wrapper and its removal.
    res.on('close', () => {
      const final = finalStatus({ statusCode: res.statusCode, finished: res.writableFinished, err: fields.err as ErrorCode | null });
      fields.status = final.status;
      fields.err = final.err;
      fields.durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      accessLog(log, fields, rt.config.log.access);
      metrics.recordRequest(fields.status, fields.cache ?? 'NONE', fields.durationMs / 1000);
      deps.runtime.release(rt);
    });

    try {
      serve(rt, req, res, fields, preset);
    } catch (err) {
      fail(res, fields, isGprError(err) ? err : gprError('GPR_ERR_INTERNAL', [(err as Error).message], err));
    }
  };

  function serve(rt: Runtime, req: IncomingMessage, res: ServerResponse, fields: AccessFields, preset: boolean): void {
    // Node's own check (requireHostHeader) would answer 400 without an access line.
    if (req.headers.host === undefined && req.httpVersion === '1.1') return fail(res, fields, gprError('GPR_ERR_BAD_REQUEST', ['HTTP/1.1 request without Host header']));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return fail(res, fields, gprError('GPR_ERR_METHOD_NOT_ALLOWED', [req.method]));
    }
    const via = req.headers.via;
    if (via?.includes(VIA_TOKEN)) return fail(res, fields, gprError('GPR_ERR_LOOP', [via]));
    const hostname = hostnameOf(fields.host);
    const servername = (req.socket as TLSSocket).servername;
    if (typeof servername === 'string' && hostname !== servername.toLowerCase()) {
      return fail(res, fields, gprError('GPR_ERR_MISDIRECTED', [hostname, servername]));
    }
    // An intercepted connection to a checksum database host (sum.golang.org)
    // sends sumdb paths without the /sumdb/{name} prefix. Trust the name only
    // from TLS, where the SNI allowlist vetted it.
    const sumdbHost = typeof servername === 'string' && hostname.startsWith('sum.') ? hostname : undefined;
    const parsed = parse(req.url ?? '/', sumdbHost);
    if (!parsed.ok) return fail(res, fields, gprError(parsed.code, parsed.args));
    fields.path = parsed.path;
    // Private patterns, checksum databases and the chain: decided in upstream/route.ts.
    const route = rt.route(parsed.request);
    if (route.kind === 'refuse') return fail(res, fields, gprError(route.code, route.args));
    if (route.kind === 'supported') return supported(res, fields);
    fields.upstreamPath = route.chain.firstPath(parsed.request);

    const key = cacheKey(parsed.request);
    const cached = cache.lookup(key);
    if (cached?.fresh) return sendObject(req, res, fields, cached.object, preset);
    cache.answer(key, parsed.request, missContext(rt, req, parsed, route.chain, fields)).then(
      (answer) => send(req, res, fields, answer),
      (err: GprError) => upstreamFailed(route.onFailure, res, fields, err),
    );
  }

  /** What a miss needs: the one call into the upstream chain, the TTLs and limits. */
  function missContext(rt: Runtime, req: IncomingMessage, parsed: { request: ProxyRequest; path: string }, chain: Chain, fields: AccessFields): MissContext {
    const headers = upstreamHeaders(req, parsed.path);
    return {
      // The upstream call. Its response satisfies cache/fill.ts's BodySource;
      // the access line names the entry that answered (a full URL when the chain has several).
      fetch: () =>
        countUpstream(chain.fetch(parsed.request, headers)).then((r) => {
          fields.upstreamPath = chain.entries.length > 1 ? r.entry.label + r.entry.path : r.entry.path;
          return r;
        }),
      ttl: rt.config.cache,
      staleIfErrorMs: rt.config.cache.staleIfErrorMs,
      idleTimeoutMs: rt.config.timeouts.responseMs,
      maxObjectBytes: rt.config.cache.maxObjectBytes,
      upstreamLabel: chain.label,
      // A fill may outlive this request (other clients read it): its
      // runtime, and so its backend connection, stays open until it ends.
      onFill: () => {
        deps.runtime.hold(rt);
        return { done: () => deps.runtime.unhold(rt) };
      },
    };
  }

  function upstreamFailed(onFailure: FailurePolicy, res: ServerResponse, fields: AccessFields, err: GprError): void {
    fields.cache = 'MISS';
    cache.record('MISS');
    if (!isGprError(err)) err = gprError('GPR_ERR_INTERNAL', [(err as Error).message], err);
    const answer = errorStatus(err.code, onFailure);
    if (answer.fallthrough) return fail(res, fields, err, answer.status, `backend failed, so the go command may try its next GOPROXY entry: ${err.message}`);
    return fail(res, fields, err, answer.status);
  }

  /**
   * Parses with a bounded memo: a build fleet asks for the same few thousand
   * paths over and over, and validating a module path is the costliest step
   * of a cache hit. Results are immutable, and a flood of distinct paths only
   * evicts entries.
   */
  function parse(url: string, sumdbHost: string | undefined): ParseResult {
    const key = sumdbHost === undefined ? url : `${sumdbHost} ${url}`;
    let parsed = parsedPaths.get(key);
    if (!parsed) parsedPaths.set(key, (parsed = parseProxyPath(url, { sumdbHost })));
    return parsed;
  }

  function countUpstream<T extends { status: number }>(p: Promise<T>): Promise<T> {
    const started = performance.now();
    return p.then(
      (r) => {
        metrics.upstream.inc({ outcome: String(r.status) });
        metrics.upstreamDuration.observe((performance.now() - started) / 1000);
        return r;
      },
      (err: GprError) => {
        metrics.upstream.inc({ outcome: err.code });
        throw err;
      },
    );
  }

  /** Writes an answer: head, then the body at the client's pace; a broken body cuts the connection. */
  function send(req: IncomingMessage, res: ServerResponse, fields: AccessFields, answer: Answer): void {
    fields.cache = answer.cache;
    fields.upstreamMs = round(answer.upstreamMs);
    if (answer.err) fields.err = answer.err.code;
    const body = answer.body;
    // A pooled disk buffer is reused only once the socket let go of it.
    const sent = answer.sent;
    if (sent) {
      if (res.destroyed) sent(false);
      else res.once('close', () => sent(res.writableFinished));
    }
    const discard = () => {
      if (!Buffer.isBuffer(body)) body.destroy();
    };
    if (res.destroyed) return discard();
    res.setHeader('x-request-id', fields.reqId);
    const headers: OutgoingHttpHeaders = { ...answer.headers, 'x-cache': answer.cache };
    // A stale copy is an emergency answer: clients must not keep it.
    if (answer.cache === 'STALE') headers['cache-control'] = 'no-cache';
    if (answer.status === 200 && notModified(req.headers['if-none-match'], answer.etag)) {
      discard();
      res.writeHead(304, notModifiedHeaders(headers, answer.cache)).end();
      return;
    }
    if (!Buffer.isBuffer(body) && req.httpVersion === '1.0' && headers['content-length'] === undefined && answer.length && req.method !== 'HEAD') {
      // An HTTP/1.0 client reads to the close: without a length it cannot tell
      // a cut from the end. It gets the head once the body is whole in the spool.
      answer.length.then(
        (n) => {
          if (res.destroyed) return discard();
          res.writeHead(answer.status, { ...headers, 'content-length': n });
          streamBody(body, res, fields);
        },
        (err: GprError) => {
          fields.err = err.code;
          discard();
          res.destroy();
        },
      );
      return;
    }
    res.writeHead(answer.status, headers);
    if (req.method === 'HEAD') {
      discard();
      res.end();
      return;
    }
    if (Buffer.isBuffer(body)) {
      fields.bytes = body.length;
      res.end(body);
      return;
    }
    // The head goes out now: a body that breaks off later is a visible cut.
    res.flushHeaders();
    streamBody(body, res, fields);
  }

  /** A HIT from the memory tier: the hot path. `preset`: X-Request-Id (and Connection) are set on `res` already. */
  function sendObject(req: IncomingMessage, res: ServerResponse, fields: AccessFields, object: CachedObject, preset: boolean): void {
    fields.cache = 'HIT';
    cache.record('HIT');
    if (object.status === 200 && notModified(req.headers['if-none-match'], object.etag)) {
      const headers: OutgoingHttpHeaders = { etag: object.etag, 'cache-control': object.cacheControl, 'x-cache': 'HIT', 'x-request-id': fields.reqId };
      if (object.lastModified) headers['last-modified'] = object.lastModified;
      res.writeHead(304, headers).end();
      return;
    }
    // Only a header array on a response with no header set yet takes Node's
    // fast path (no removeHeader/appendHeader per field).
    const headers = hitHeaders(object);
    res.writeHead(object.status, preset ? headers : [...headers, 'x-request-id', fields.reqId]);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (object.body.length <= SLICE_BYTES) {
      fields.bytes = object.body.length;
      res.end(object.body);
      return;
    }
    sendSlices(res, fields, object.body);
  }
}

/** Writes `body` in {@link SLICE_BYTES} slices with backpressure, counting each slice the socket took. */
function sendSlices(res: ServerResponse, fields: AccessFields, body: Buffer): void {
  let offset = 0;
  const counted = (n: number) => (err?: Error | null) => {
    if (!err) fields.bytes += n;
  };
  const pump = (): void => {
    while (offset < body.length && !res.destroyed) {
      const slice = body.subarray(offset, Math.min(offset + SLICE_BYTES, body.length));
      offset += slice.length;
      if (offset === body.length) {
        res.end(slice, counted(slice.length));
        return;
      }
      if (!res.write(slice, counted(slice.length))) {
        res.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

/**
 * Pipes a fill's body to the client at the client's pace, counting each
 * chunk once the socket took it (an abort logs the bytes really sent).
 */
function streamBody(body: Readable, res: ServerResponse, fields: AccessFields): void {
  body.on('data', (chunk: Buffer) => {
    const ok = res.write(chunk, (err) => {
      if (!err) fields.bytes += chunk.length;
    });
    if (!ok) body.pause();
  });
  res.on('drain', () => body.resume());
  body.once('end', () => res.end());
  body.once('error', (err) => {
    // The fill broke off: the client sees the connection cut.
    if (isGprError(err)) fields.err = err.code;
    res.destroy();
  });
  // The client left (logged as 499): this reader leaves the fill.
  res.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
}

/**
 * The headers of a HIT, built once per stored object as the flat array
 * writeHead takes without re-validating an object's keys: the hot path.
 */
const hitHeaderCache = new WeakMap<CachedObject, string[]>();
function hitHeaders(object: CachedObject): string[] {
  let headers = hitHeaderCache.get(object);
  if (!headers) {
    headers = Object.entries(headersOf(object, 'HIT', object.cacheControl)).flatMap(([k, v]) => [k, String(v)]);
    hitHeaderCache.set(object, headers);
  }
  return headers;
}

function headersOf(object: CachedObject, cache: CacheStatus, cacheControl: string): OutgoingHttpHeaders {
  const encoding = object.contentEncoding ? { 'content-encoding': object.contentEncoding } : {};
  const headers: OutgoingHttpHeaders = {
    'content-type': object.contentType,
    'content-length': object.body.length,
    etag: object.etag,
    'cache-control': cacheControl,
    'x-cache': cache,
    ...encoding,
  };
  if (object.lastModified) headers['last-modified'] = object.lastModified;
  return headers;
}

/**
 * `/sumdb/<name>/supported` of a configured checksum database: the go
 * command then sends that database's traffic through this proxy.
 */
function supported(res: ServerResponse, fields: AccessFields): void {
  fields.cache = 'BYPASS';
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 0, 'cache-control': 'no-cache', 'x-cache': 'BYPASS', 'x-request-id': fields.reqId });
  res.end();
}

/**
 * Answers a request error as `text/plain` (the go command prints up to 8
 * lines of it to the user), with the status of its code unless `status`
 * overrides it.
 */
function fail(res: ServerResponse, fields: AccessFields, err: GprError, status = err.status, message = err.message): void {
  fields.err = err.code;
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = `go-proxy-rewriter: ${message}\n`;
  fields.bytes = Buffer.byteLength(body);
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': fields.bytes,
    'cache-control': NO_STORE,
    'x-request-id': fields.reqId,
    ...(fields.cache ? { 'x-cache': fields.cache } : {}),
  });
  res.end(fields.method === 'HEAD' ? undefined : body);
}

function notModifiedHeaders(headers: OutgoingHttpHeaders, cache: CacheStatus): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { etag: headers.etag, 'cache-control': headers['cache-control'], 'x-cache': cache };
  if (headers['last-modified']) out['last-modified'] = headers['last-modified'];
  return out;
}

/** Headers of the backend request. `path` is validated printable ASCII, so it cannot inject a header. */
function upstreamHeaders(req: IncomingMessage, path: string): OutgoingHttpHeaders {
  const remote = req.socket.remoteAddress ?? '';
  const forwardedFor = req.headers['x-forwarded-for'];
  return {
    'x-go-proxy-original-path': path,
    'x-forwarded-for': forwardedFor ? `${forwardedFor}, ${remote}` : remote,
    'x-forwarded-proto': (req.socket as TLSSocket).encrypted ? 'https' : 'http',
    'x-forwarded-host': req.headers.host ?? '',
    via: `${req.httpVersion} ${VIA_TOKEN}`,
    'user-agent': req.headers['user-agent'] ?? 'go-proxy-rewriter',
    // Store one identity-encoded copy that every client can take; zips are compressed already.
    'accept-encoding': 'identity',
    accept: '*/*',
  };
}

function hostnameOf(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon === -1 ? h : h.slice(0, colon);
}

function round(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 1000) / 1000;
}
