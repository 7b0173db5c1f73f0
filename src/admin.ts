/**
 * @module admin
 * The admin listener: /healthz (the process answers), /readyz (it accepts
 * new work: 503 while draining) and /metrics (Prometheus text format).
 * Must not: serve proxy traffic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export interface AdminDeps {
  /** A worker supervisor passes the registry that aggregates its workers. */
  metrics: { registry: Pick<Registry, 'metrics' | 'contentType'> };
  ready: () => boolean;
}

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req, res) {
    const path = (req.url ?? '/').split('?')[0];
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

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}
