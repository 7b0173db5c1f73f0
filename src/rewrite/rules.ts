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
  const fill = {
    list: compile(prefix + templates.list),
    latest: compile(prefix + templates.latest),
    info: compile(prefix + templates.info),
    mod: compile(prefix + templates.mod),
    zip: compile(prefix + templates.zip),
    sumdb: compile(prefix + templates.sumdb),
  };
  return function rewritePath(request) {
    switch (request.kind) {
      case 'sumdb':
        return fill.sumdb({ name: request.name, path: request.sumdbPath });
      case 'list':
      case 'latest':
        return fill[request.kind]({ module: request.escapedModule });
      default:
        return fill[request.kind]({ module: request.escapedModule, version: request.escapedVersion });
    }
  };
}

/** Splits a template once into literals and placeholders, so each request only concatenates. */
function compile(template: string): (values: Record<string, string>) => string {
  const parts = template.split(/\{(\w+)\}/); // odd indexes are placeholder names
  return function fillTemplate(values) {
    let out = parts[0] as string;
    for (let i = 1; i < parts.length; i += 2) out += (values[parts[i] as string] ?? `{${parts[i]}}`) + (parts[i + 1] as string);
    return out;
  };
}
