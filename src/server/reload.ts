/**
 * @module server/reload
 * SIGHUP (or a config watch): re-read the config, build a whole new runtime,
 * swap it in; on failure the old one keeps serving. Reloads never overlap;
 * requests for one while one runs cause one more pass. Reads are bounded in
 * time and size (config/load.ts), so a FIFO or a hung file system cannot
 * wedge later reloads or the drain.
 * Must not: touch listeners (they change on restart only) or signals.
 */
import type { Cache } from '../cache/cache.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { isGprError } from '../errors.js';
import { announce, lifecycle, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { buildRuntime, describeUpstream, type RuntimeRef } from '../runtime.js';
import { healthReporter } from './upstream-health.js';
import type { Notifier } from '../systemd/notify.js';
import { loadTlsMaterial } from '../tls/material.js';

export type ReloadResult = { ok: true; generation: number } | { ok: false; error: Error };

export interface ReloaderDeps {
  /** Re-read on every reload; without it a reload re-applies the current config. */
  configPath: string | undefined;
  env: NodeJS.ProcessEnv;
  runtime: RuntimeRef;
  cache: Cache;
  log: Logger;
  metrics: Metrics;
  notifier: Notifier;
  /** Whether runtimes carry TLS material (an HTTPS listener exists). */
  wantsTls: boolean;
  /** The listen addresses in use (a change takes effect on restart only). */
  listen: Config['listen'];
  /** Applies what a new config changes outside the runtime (server limits). */
  onApplied: (config: Config) => void;
  /** The systemd STATUS= line after a reload. */
  statusLine: () => string;
}

export interface Reloader {
  /** `config`: apply this one (already validated) instead of reading configPath (a worker's supervisor read it). */
  reload(config?: Config): Promise<ReloadResult>;
  /** The reload under way, if any. */
  pending(): Promise<ReloadResult> | undefined;
  /** "none", "ok (generation N)" or "failed: CODE". */
  last(): string;
}

export function createReloader(deps: ReloaderDeps): Reloader {
  const { runtime, log, metrics, notifier } = deps;
  let last = 'none';
  let given: Config | undefined;

  async function reloadOnce(): Promise<ReloadResult> {
    notifier.reloading();
    try {
      const next = given;
      given = undefined;
      const config = next ?? (deps.configPath ? await loadConfig(deps.configPath, deps.env) : runtime.current.config);
      const tls = deps.wantsTls ? await loadTlsMaterial(config.tls, log) : undefined;
      const generation = runtime.current.generation + 1;
      runtime.swap(buildRuntime(config, generation, tls, healthReporter(log, deps.metrics, deps.env)));
      deps.cache.memory.resize(config.cache.maxBytes, config.cache.maxEntryBytes);
      deps.cache.disk?.resize(config.cache.diskMaxBytes);
      log.level = config.log.level;
      deps.onApplied(config);
      if (JSON.stringify(config.listen) !== JSON.stringify(deps.listen)) {
        log.warn({ listen: config.listen }, 'listen addresses changed: they take effect on restart');
      }
      metrics.reloads.inc({ result: 'ok' });
      metrics.generation.set(generation);
      last = `ok (generation ${generation})`;
      announce(log, 'info', { generation, upstream: describeUpstream(config.upstream), rewrite: config.rewrite }, lifecycle.reloaded);
      return { ok: true, generation };
    } catch (err) {
      const error = err as Error;
      metrics.reloads.inc({ result: 'failed' });
      last = `failed: ${isGprError(error) ? error.code : error.message}`;
      announce(log, 'error', { err: { code: isGprError(error) ? error.code : undefined, message: error.message } }, lifecycle.reloadFailed);
      return { ok: false, error };
    } finally {
      // Awaited: `systemctl reload` (POST /reload) returns only once systemd has READY=1 and the new STATUS=.
      await notifier.ready(deps.statusLine());
    }
  }

  const runReload = coalescing(reloadOnce);

  return {
    reload(config) {
      if (config) given = config;
      return runReload();
    },
    pending: runReload.pending,
    last: () => last,
  };
}

/**
 * Wraps `run` so calls never overlap: a call while one is under way returns
 * that run's promise and causes one more pass after it (a burst of SIGHUPs is
 * one or two reloads, and the last one reads the newest config).
 */
export function coalescing<T>(run: () => Promise<T>): (() => Promise<T>) & { pending: () => Promise<T> | undefined } {
  let running: Promise<T> | undefined;
  let again = false;
  const call = (): Promise<T> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let result: T;
      do {
        again = false;
        result = await run();
      } while (again);
      running = undefined;
      return result;
    })();
    return running;
  };
  return Object.assign(call, { pending: () => running });
}
