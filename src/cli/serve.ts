/**
 * @module cli/serve
 * `serve [--config FILE]`: load the config and start the proxy with the
 * process's signals installed.
 * Must not: contain proxy logic (server.ts).
 */
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { availableParallelism } from 'node:os';
import { startServer } from '../server.js';
import { workerCount } from '../workers/messages.js';
import { startSupervisor } from '../workers/supervisor.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('start the proxy (adopts systemd sockets when socket-activated)')
    .option('-c, --config <file>', 'JSON config file (default: the embedded defaults)')
    .action(async (opts: { config?: string }) => {
      const config = await loadConfig(opts.config, process.env);
      // workers > 1: this process supervises forked workers (src/workers/); 1: it serves itself.
      const start = workerCount(config.workers, availableParallelism()) > 1 ? startSupervisor : startServer;
      await start({ config, configPath: opts.config, exit: (code) => process.exit(code) });
    });
}
