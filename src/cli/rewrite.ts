/**
 * @module cli/rewrite
 * `rewrite PATH [--config FILE] [--host HOST]`: a dry run of how a request
 * path is parsed, rewritten and cached.
 * Must not: contact the backend.
 */
import { Command } from 'commander';
import { cacheKey, freshness } from '../cache/http.js';
import { loadConfig } from '../config/load.js';
import { gprError } from '../errors.js';
import { parseProxyPath } from '../goproxy/path.js';
import { compileRewriter } from '../rewrite/rules.js';

export function rewriteCommand(): Command {
  return new Command('rewrite')
    .description('show how a request path is parsed, rewritten and cached (a dry run)')
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
      const upstreamPath = compileRewriter(config.rewrite, config.upstream)(request);
      const fresh = freshness(request, 200, config.cache);
      const lines: Array<[string, string]> = [
        ['path', parsed.path],
        ['kind', request.kind],
      ];
      if (request.kind === 'sumdb') lines.push(['sumdb', `${request.name} ${request.op} ${request.sumdbPath}`]);
      else lines.push(['module', `${request.module} (wire: ${request.escapedModule})`]);
      if ('version' in request) lines.push(['version', `${request.version} (wire: ${request.escapedVersion}; ${request.canonical ? 'canonical' : 'query'})`]);
      lines.push(
        ['upstream', new URL(upstreamPath, config.upstream).href],
        ['header', `X-Go-Proxy-Original-Path: ${parsed.path}`],
        ['cache key', cacheKey(request)],
        ['cache', fresh?.immutable ? 'immutable (evicted only by size)' : `fresh for ${fresh?.ttlMs ?? 0} ms, served stale if the backend fails`],
      );
      process.stdout.write(lines.map(([k, v]) => `${`${k}:`.padEnd(11)} ${v}\n`).join(''));
    });
}
