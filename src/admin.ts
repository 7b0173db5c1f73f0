/**
 * @module admin
 * The admin listener: /healthz (the process answers), /readyz (it accepts
 * new work: 503 while draining) and /metrics (Prometheus text format).
 * Must not: serve proxy traffic.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Metrics } from './metrics.js';

export interface AdminDeps {
  metrics: Metrics;
  ready: () => boolean;
  /** False when every upstream entry is cooling down: /readyz is 503 then too. */
  upstreamsAvailable?: () => boolean;
}

export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return function handleAdmin(req, res) {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') return text(res, 200, 'ok\n');
    if (path === '/readyz') {
      if (!deps.ready()) return text(res, 503, 'draining\n');
      if (deps.upstreamsAvailable?.() === false) return text(res, 503, 'every upstream is cooling down after repeated failures\n');
      return text(res, 200, 'ready\n');
    }
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
