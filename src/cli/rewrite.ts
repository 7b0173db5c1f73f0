/**
 * @module cli/rewrite
 * `go-proxy-rewriter rewrite PATH [--config FILE] [--host HOST]`: a dry run
 * of one request: how it parses, where upstream/route.ts sends it (private
 * patterns, checksum databases), every chain entry it would walk with the
 * URL each would be asked for, the headers (secret values redacted), the
 * cache key and freshness.
 * Must not: send requests, or print a header value of an upstream entry.
 */
import { Command } from 'commander';
import { cacheKey, freshness } from '../cache/http.js';
import { loadConfig } from '../config/load.js';
import { gprError } from '../errors.js';
import { parseProxyPath } from '../goproxy/path.js';
import { buildRuntime } from '../runtime.js';

export function rewriteCommand(): Command {
  return new Command('rewrite')
    .description('show how a request path is parsed, routed, rewritten and cached, with every upstream it would try (a dry run)')
    .argument('<path>', 'request path as the go command sends it, e.g. /github.com/!burnt!sushi/toml/@v/list')
    .option('-c, --config <file>', 'JSON config file')
    .option('--host <host>', 'Host the request was sent to (sum.* hosts parse sumdb paths)')
    .action(async (path: string, opts: { config?: string; host?: string }) => {
      const config = await loadConfig(opts.config, process.env);
      const parsed = parseProxyPath(path, { sumdbHost: opts.host?.startsWith('sum.') ? opts.host : undefined });
      if (!parsed.ok) {
        const err = gprError(parsed.code, parsed.args);
        process.stdout.write(`rejected:   ${err.status} ${err.code}\nmessage:    ${err.message}\n`);
        process.exitCode = 1;
        return;
      }
      const request = parsed.request;
      const lines: Array<[string, string]> = [
        ['path', parsed.path],
        ['kind', request.kind],
      ];
      if (request.kind === 'sumdb') lines.push(['sumdb', `${request.name} ${request.op} ${request.sumdbPath}`]);
      else lines.push(['module', `${request.module} (wire: ${request.escapedModule})`]);
      if (request.kind === 'info' || request.kind === 'mod' || request.kind === 'zip') {
        lines.push(['version', `${request.version} (wire: ${request.escapedVersion}; ${request.canonical ? 'canonical' : 'query'})`]);
      }
      const rt = buildRuntime(config, 0, undefined, { env: process.env });
      try {
        const route = rt.route(request);
        if (route.kind === 'refuse') {
          const err = gprError(route.code, route.args);
          lines.push(['answer', `${err.status} ${err.code} here, never forwarded`], ['message', err.message]);
        } else if (route.kind === 'supported') {
          lines.push(['answer', '200 here: the go command sends this checksum database\'s traffic through the proxy']);
        } else {
          lines.push(['route', route.privateMatch ? `private (pattern ${route.privateMatch}): its own upstream only` : request.kind === 'sumdb' ? `checksum database ${request.name}` : 'public chain']);
          route.chain.plan(request).forEach((step, i, steps) => {
            lines.push([i === 0 ? 'upstream' : `upstream ${i + 1}`, step.url]);
            const notes: string[] = [];
            if (step.headerNames.length) notes.push(`headers ${step.headerNames.map((h) => `${h}: [redacted]`).join(', ')}`);
            if (i < steps.length - 1) notes.push(step.fallThrough === 'error' ? 'then "|": next after any error (refused, timeout, 5xx) or 404/410' : 'then ",": next only after 404/410');
            if (notes.length) lines.push(['', notes.join('; ')]);
          });
          lines.push(['on failure', route.onFailure === 'notfound' ? '404 (the go command tries its next GOPROXY entry), or the stale copy' : '502/504, or the stale copy']);
          const fresh = freshness(request, 200, config.cache);
          lines.push(
            ['header', `X-Go-Proxy-Original-Path: ${parsed.path}`],
            ['cache key', cacheKey(request)],
            ['cache', fresh?.immutable ? 'immutable (evicted only by size)' : `fresh for ${fresh?.ttlMs ?? 0} ms, served stale if the backend fails`],
          );
        }
      } finally {
        for (const chain of rt.chains) chain.close();
      }
      process.stdout.write(lines.map(([k, v]) => `${k ? `${k}:`.padEnd(11) : ' '.repeat(11)} ${v}\n`).join(''));
    });
}
