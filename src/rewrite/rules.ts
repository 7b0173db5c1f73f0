/**
 * @module rewrite/rules
 * Turns a parsed Go proxy request into the backend path: preset or custom
 * templates, under the upstream URL's path prefix. Pure.
 * Must not: validate paths (goproxy/path.ts did), or do I/O.
 */
import type { ProxyRequest } from '../goproxy/path.js';
import type { Config, RewriteTemplates } from '../config/schema.js';

/** The built-in template sets. `{module}` and `{version}` stay in escaped wire form. */
export const presets: Record<'internal' | 'goproxy', RewriteTemplates> = {
  internal: {
    list: '/v1/modules/{module}/list',
    latest: '/v1/modules/{module}/latest',
    info: '/v1/modules/{module}/versions/{version}/info',
    mod: '/v1/modules/{module}/versions/{version}/mod',
    zip: '/v1/modules/{module}/versions/{version}/zip',
    sumdb: '/v1/sumdb/{name}/{path}',
  },
  goproxy: {
    list: '/{module}/@v/list',
    latest: '/{module}/@latest',
    info: '/{module}/@v/{version}.info',
    mod: '/{module}/@v/{version}.mod',
    zip: '/{module}/@v/{version}.zip',
    sumdb: '/sumdb/{name}/{path}',
  },
};

/** Maps a request to the backend path (prefix included, no query). */
export type Rewriter = (request: ProxyRequest) => string;

/**
 * Compiles `rewrite` (preset name or templates) against the path prefix of
 * `upstream` ("https://host/api/go/repo" prefixes "/api/go/repo").
 */
export function compileRewriter(rewrite: Config['rewrite'], upstream: string): Rewriter {
  const templates = typeof rewrite === 'string' ? presets[rewrite] : rewrite;
  const prefix = new URL(upstream).pathname.replace(/\/+$/, '');
  return function rewritePath(request) {
    switch (request.kind) {
      case 'sumdb':
        return prefix + fill(templates.sumdb, { name: request.name, path: request.sumdbPath });
      case 'list':
      case 'latest':
        return prefix + fill(templates[request.kind], { module: request.escapedModule });
      default:
        return prefix + fill(templates[request.kind], { module: request.escapedModule, version: request.escapedVersion });
    }
  };
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}
