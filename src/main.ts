#!/usr/bin/env node
/**
 * @module main
 * The command line: argv -> config -> action. The public interface:
 *   go-proxy-rewriter serve [--config FILE]
 *   go-proxy-rewriter rewrite PATH [--config FILE] [--host HOST]
 *   go-proxy-rewriter check-config --config FILE
 *   go-proxy-rewriter certs init|export|status [--dir DIR]
 *   go-proxy-rewriter cache ls [MODULE] | stats | purge MODULE[@VERSION] [--config FILE]
 * Must not: contain proxy logic. The only place that calls process.exit.
 */
import { Command, CommanderError } from 'commander';
import { loadConfig } from './config/load.js';
import { isGprError } from './errors.js';
import { rewriteCommand } from './cli/rewrite.js';
import { startServer } from './server.js';
import { caCommands } from './tls/cli.js';
import { cacheCommands } from './cli/cache.js';

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

program.addCommand(rewriteCommand());

program
  .command('check-config')
  .description('validate a config file; exits 1 listing every problem')
  .requiredOption('-c, --config <file>', 'JSON config file')
  .action(async (opts: { config: string }) => {
    await loadConfig(opts.config, process.env);
    process.stdout.write(`${opts.config}: ok\n`);
  });

program.addCommand(caCommands());
program.addCommand(cacheCommands());

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (isGprError(err)) process.stderr.write(`go-proxy-rewriter: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`go-proxy-rewriter: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
