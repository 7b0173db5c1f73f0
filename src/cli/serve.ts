/**
 * @module cli/serve
 * `serve [--config FILE]`: load the config and start the proxy with the
 * process's signals installed.
 * Must not: contain proxy logic (server.ts).
 */
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { startServer } from '../server.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('start the proxy (adopts systemd sockets when socket-activated)')
    .option('-c, --config <file>', 'JSON config file (default: the embedded defaults)')
    .action(async (opts: { config?: string }) => {
      const config = await loadConfig(opts.config, process.env);
      await startServer({ config, configPath: opts.config, exit: (code) => process.exit(code) });
    });
}
