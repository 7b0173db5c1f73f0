#!/usr/bin/env node
/**
 * @module main
 * The command line: argv -> config -> action. The public interface:
 *   go-proxy-rewriter serve [--config FILE]
 *   go-proxy-rewriter rewrite PATH [--config FILE] [--host HOST]
 *   go-proxy-rewriter check-config --config FILE
 *   go-proxy-rewriter certs init|export|status [--dir DIR]
 *   go-proxy-rewriter doctor [--json] [--config FILE]
 * Must not: contain proxy logic. The only place that calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { cacheKey, freshness } from './cache/http.js';
import { loadConfig } from './config/load.js';
import { gprError, isGprError } from './errors.js';
import { parseProxyPath } from './goproxy/path.js';
import { compileRewriter } from './rewrite/rules.js';
import { startServer } from './server.js';
import { caCommands } from './tls/cli.js';
import { doctorCommand } from './cli/doctor.js';

const program = new Command('go-proxy-rewriter')
  .description('Go module proxy: rewrites Go proxy requests to an internal cache backend, caches them, and terminates TLS for the Go proxy hosts')
  .showHelpAfterError()
  .exitOverride();

program
  .command('serve')
  .description('start the proxy (adopts systemd sockets when socket-activated)')
  .option('-c, --config <file>', 'JSON config file (default: the embedded defaults)')
  .action(async (opts: { config?: string }) => {
    const config = await loadConfig(opts.config, process.env);
    await startServer({ config, configPath: opts.config, exit: (code) => process.exit(code) });
  });

program
  .command('rewrite')
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

program
  .command('check-config')
  .description('validate a config file; exits 1 listing every problem')
  .requiredOption('-c, --config <file>', 'JSON config file')
  .action(async (opts: { config: string }) => {
    await loadConfig(opts.config, process.env);
    process.stdout.write(`${opts.config}: ok\n`);
  });

program.addCommand(caCommands());
program.addCommand(doctorCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (isGprError(err)) process.stderr.write(`go-proxy-rewriter: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`go-proxy-rewriter: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
