/**
 * @module config/load
 * Reads the config file, applies the per-host environment overrides, validates
 * and deep-freezes the result. Every problem is reported in one error.
 * Must not: start anything or keep state.
 */
import { readFile } from 'node:fs/promises';
import { gprError } from '../errors.js';
import { validateConfig, type Config } from './schema.js';

/**
 * Environment variables an operator sets per host, and the config key each
 * one overrides. An empty value disables a listener.
 */
export const envOverrides = {
  GPR_LISTEN_HTTP: ['listen', 'http'],
  GPR_LISTEN_HTTPS: ['listen', 'https'],
  GPR_LISTEN_ADMIN: ['listen', 'admin'],
  GPR_UPSTREAM: ['upstream'],
  GPR_LOG_LEVEL: ['log', 'level'],
} as const;

/**
 * Loads the config from `file` (or the embedded defaults when undefined),
 * with `env` overrides applied. Throws GPR_ERR_CONFIG_READ or
 * GPR_ERR_CONFIG_INVALID (message lists every problem with its field path).
 */
export async function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<Config> {
  let raw: unknown = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw gprError('GPR_ERR_CONFIG_READ', [file, (err as Error).message], err);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw gprError('GPR_ERR_CONFIG_INVALID', [` in ${file}`, `  not valid JSON: ${(err as Error).message}`], err);
    }
  }
  return parseConfig(raw, env, file);
}

/** Validates an already-parsed config object; see {@link loadConfig}. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = {}, source?: string): Config {
  const merged = applyEnv(raw, env);
  const result = validateConfig(merged);
  if (!result.ok) {
    throw gprError('GPR_ERR_CONFIG_INVALID', [source ? ` in ${source}` : '', result.problems.map((p) => `  ${p}`).join('\n')]);
  }
  const config = result.config;
  // systemd's CacheDirectory= sets $CACHE_DIRECTORY (a colon-separated list: take the first).
  if (config.cache.dir === undefined) config.cache.dir = env.CACHE_DIRECTORY?.split(':')[0] || 'cache';
  return deepFreeze(config);
}

function applyEnv(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const out = structuredClone(raw) as Record<string, unknown>;
  for (const [name, path] of Object.entries(envOverrides)) {
    const value = env[name];
    if (value === undefined) continue;
    let node = out;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      node[key] = typeof child === 'object' && child !== null ? child : {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1] as string] = value === '' && path[0] === 'listen' ? null : value;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
