/**
 * @module admin
 * The admin listener: /healthz (the process answers), /readyz (it accepts
 * new work: 503 while draining), /metrics (Prometheus text format), and the
 * cache routes the `cache` CLI uses (GET /cache, GET /cache/stats,
 * POST /cache/purge).
 * Must not: serve proxy traffic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cache } from './cache/cache.js';
import type { Metrics } from './metrics.js';

export interface AdminDeps {
  metrics: Metrics;
  ready: () => boolean;
  /** Enables the /cache routes. */
  cache?: Cache;
}

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req, res) {
    const path = (req.url ?? '/').split('?')[0];
    if (deps.cache && path?.startsWith('/cache')) return cacheRoute(deps.cache, req, res);
    if (path === '/healthz') return text(res, 200, 'ok\n');
    if (path === '/readyz') return deps.ready() ? text(res, 200, 'ready\n') : text(res, 503, 'draining\n');
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

// Cache routes (issue 7): JSON in, JSON out. ?module=M[&version=V].
function cacheRoute(cache: Cache, req: IncomingMessage, res: ServerResponse): void {
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
