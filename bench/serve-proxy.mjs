/**
 * @module bench/serve-proxy
 * Child-process entry of the proxy under test: `node bench/serve-proxy.mjs <config.json>`.
 * Plain JavaScript on purpose: it runs the compiled dist/ (built by
 * `npm run bench`) with no loader, exactly as `node dist/src/main.js serve`
 * does, because the tsx loader adds a hooks thread and ~36 MiB of RSS that
 * the memory columns must not show. Starts startServer() with env {} (no
 * GPR_* overrides, no socket activation), logs to fd 1 like production, and
 * reports its listener URLs over IPC (`{ ready: { http, https, admin } }`);
 * `{ cmd: 'memory' }` answers process.memoryUsage() after a GC (--expose-gc).
 * Must not: change how the proxy is configured or serves beyond the config file.
 */
import process from 'node:process';
import { loadConfig } from '../dist/src/config/load.js';
import { startServer } from '../dist/src/server.js';
import { workerCount } from '../dist/src/workers/messages.js';
import { startSupervisor } from '../dist/src/workers/supervisor.js';
import { availableParallelism } from 'node:os';

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: node bench/serve-proxy.mjs <config.json>\n');
  process.exit(2);
}
process.on('disconnect', () => process.exit(1));
process.on('message', (message) => {
  if (message?.cmd !== 'memory') return;
  globalThis.gc?.();
  process.send?.({ memory: process.memoryUsage() });
});

const config = await loadConfig(configPath, {});
// workers > 1: the supervisor forks them, as `serve` does (src/main.ts).
const start = workerCount(config.workers, availableParallelism()) > 1 ? startSupervisor : startServer;
const server = await start({ config, configPath, env: {}, exit: (code) => process.exit(code) });
const ready = {};
for (const l of server.listeners) ready[l.role] = server.url(l.role);
process.send?.({ ready });
