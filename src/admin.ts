/**
 * @module admin
 * The admin listener: /healthz (the process answers), /readyz (it accepts
 * new work: 503 while draining), /metrics (Prometheus text format), the
 * cache routes the `cache` CLI uses (GET /cache, GET /cache/stats,
 * POST /cache/purge), and POST /reload (re-read the config and answer with
 * the outcome, for `go-proxy-rewriter reload` and so `systemctl reload`).
 * Must not: serve proxy traffic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { ListedObject } from './cache/cache.js';

/** What the /cache routes use: cache.ts's Cache, or a worker supervisor's fan-out over its workers. */
export interface CacheAdmin {
  list(module?: string): Promise<ListedObject[]>;
  stats(): Record<string, unknown> | Promise<Record<string, unknown>>;
  purge(module: string, version?: string): Promise<ListedObject[]>;
}

export interface AdminDeps {
  /** A worker supervisor passes the registry that aggregates its workers. */
  metrics: { registry: Pick<Registry, 'metrics' | 'contentType'> };
  ready: () => boolean;
  /** False when every upstream entry is cooling down: /readyz is 503 then too (a supervisor asks its workers: a promise). */
  upstreamsAvailable?: () => boolean | Promise<boolean>;
  /** Enables the /cache routes. */
  cache?: CacheAdmin;
  /** The server's reload (see server.ts `ProxyServer.reload`); without it POST /reload answers 404. */
  reload?: () => Promise<ReloadOutcome>;
}

/** What a reload returned (server.ts `ReloadResult`, restated so admin.ts imports no server code). */
export type ReloadOutcome = { ok: true; generation: number } | { ok: false; error: Error & { code?: string } };

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req, res) {
    const path = (req.url ?? '/').split('?')[0];
    if (deps.cache && path?.startsWith('/cache')) return cacheRoute(deps.cache, req, res);
    if (path === '/healthz') return text(res, 200, 'ok\n');
    if (path === '/readyz') {
      if (!deps.ready()) return text(res, 503, 'draining\n');
      Promise.resolve(deps.upstreamsAvailable?.() ?? true).then(
        (available) => (available ? text(res, 200, 'ready\n') : text(res, 503, 'every upstream is cooling down after repeated failures\n')),
        (err: Error) => text(res, 503, `upstream health unknown: ${err.message}\n`),
      );
      return;
    }
    if (path === '/reload') return reloadRoute(req, res, deps.reload);
    if (path === '/metrics') {
      deps.metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
          res.end(body);
        },
        (err: Error) => text(res, 500, `metrics failed: ${err.message}\n`),
      );
      return;
    }
    text(res, 404, 'not found: try /healthz, /readyz or /metrics\n');
  };
}

/**
 * POST /reload: runs one reload (joining one under way, which then runs once
 * more so the answer covers the config as it is now) and answers when it is
 * over: 200 {"ok":true,"generation":N}, or 500 {"ok":false,"code","message"}
 * while the old config keeps serving. Only POST, so a crawler or a browser
 * prefetch of the admin port cannot trigger it. Anyone who can reach the
 * admin listener can reload (re-read the file root wrote): keep it on
 * loopback, as go-proxy-rewriter-admin.socket does.
 */
function reloadRoute(req: IncomingMessage, res: ServerResponse, reload: AdminDeps['reload']): void {
  if (!reload) return text(res, 404, 'not found: reload is not available here\n');
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return text(res, 405, 'use POST /reload\n');
  }
  req.resume();
  const answer = (status: number, body: object) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  reload().then(
    (result) => (result.ok ? answer(200, { ok: true, generation: result.generation }) : answer(500, { ok: false, code: result.error.code ?? null, message: result.error.message })),
    (err: Error) => answer(500, { ok: false, code: null, message: err.message }),
  );
}

// Cache routes (issue 7): JSON in, JSON out. ?module=M[&version=V].
function cacheRoute(cache: CacheAdmin, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://admin');
  const module = url.searchParams.get('module') ?? undefined;
  const version = url.searchParams.get('version') ?? undefined;
  let work: Promise<unknown> | undefined;
  if (url.pathname === '/cache' && req.method === 'GET') work = cache.list(module);
  else if (url.pathname === '/cache/stats' && req.method === 'GET') work = Promise.resolve(cache.stats());
  else if (url.pathname === '/cache/purge' && req.method === 'POST') {
    if (!module) return text(res, 400, 'purge needs ?module=MODULE[&version=VERSION]\n');
    work = cache.purge(module, version).then((removed) => ({ removed }));
  }
  if (!work) return text(res, 404, 'not found: try GET /cache, GET /cache/stats or POST /cache/purge\n');
  work.then(
    (body) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(`${JSON.stringify(body)}\n`);
    },
    (err: Error) => text(res, 500, `cache ${url.pathname} failed: ${err.message}\n`),
  );
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}
