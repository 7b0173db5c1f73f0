/**
 * @module server/upstream-health
 * Wires the chains' passive health (upstream/health.ts) to the process's
 * logs and metrics, for every runtime the server builds (start and reload).
 * Must not: decide health (upstream/) or build runtimes.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ChainHooks } from '../upstream/chain.js';

/**
 * Chain hooks that put entry health into logs (`upstream cooling down`,
 * `upstream probing`, `upstream healthy`) and metrics (gpr_upstream_up,
 * gpr_upstream_cooldowns_total).
 */
export function healthReporter(log: Logger, metrics: Metrics, env: NodeJS.ProcessEnv): ChainHooks {
  return {
    env,
    onHealth(upstream, state, failures, initial) {
      metrics.upstreamUp.set({ upstream }, state === 'cooling' ? 0 : 1);
      if (initial) return;
      if (state === 'cooling') {
        metrics.upstreamCooldowns.inc({ upstream });
        log.warn({ upstream, failures }, 'upstream cooling down');
      } else log.info({ upstream, failures }, state === 'probing' ? 'upstream probing' : 'upstream healthy');
    },
  };
}

