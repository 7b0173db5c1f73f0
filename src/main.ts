#!/usr/bin/env node
/**
 * @module main
 * The command line's entry point (dist/src/main.js, the package's bin):
 * registers the subcommands of src/cli/, one line each, and turns errors
 * into exit codes. The public interface:
 *   go-proxy-rewriter serve [--config FILE]
 *   go-proxy-rewriter rewrite PATH [--config FILE] [--host HOST]
 *   go-proxy-rewriter check-config --config FILE
 *   go-proxy-rewriter certs init|export|status [--dir DIR]
 *   go-proxy-rewriter doctor [--json] [--config FILE]
 *   go-proxy-rewriter cache ls [MODULE] | stats | purge MODULE[@VERSION] [--config FILE]
 * Must not: contain proxy logic or a subcommand's code (src/cli/*.ts). The
 * only place that calls process.exit besides `serve`'s signal handling.
 */
import { Command, CommanderError } from 'commander';
import { cacheCommands } from './cli/cache.js';
import { caCommands } from './cli/certs.js';
import { checkConfigCommand } from './cli/check-config.js';
import { doctorCommand } from './cli/doctor.js';
import { rewriteCommand } from './cli/rewrite.js';
import { serveCommand } from './cli/serve.js';
import { isGprError } from './errors.js';

const program = new Command('go-proxy-rewriter')
  .description('Go module proxy: rewrites Go proxy requests to an internal cache backend, caches them, and terminates TLS for the Go proxy hosts')
  .showHelpAfterError()
  .exitOverride();

// One line per subcommand (src/cli/*.ts).
program.addCommand(serveCommand());
program.addCommand(rewriteCommand());
program.addCommand(checkConfigCommand());
program.addCommand(caCommands());
program.addCommand(cacheCommands());
program.addCommand(doctorCommand());

// addCommand() does not pass the help and exit settings down as command() does.
for (const command of program.commands) command.copyInheritedSettings(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (isGprError(err)) process.stderr.write(`go-proxy-rewriter: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`go-proxy-rewriter: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
