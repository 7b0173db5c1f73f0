/**
 * @module cli/check-config
 * `check-config --config FILE`: validate a config file; exit 1 listing every problem.
 * Must not: start anything.
 */
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';

export function checkConfigCommand(): Command {
  return new Command('check-config')
    .description('validate a config file; exits 1 listing every problem')
    .requiredOption('-c, --config <file>', 'JSON config file')
    .action(async (opts: { config: string }) => {
      await loadConfig(opts.config, process.env);
      process.stdout.write(`${opts.config}: ok\n`);
    });
}
