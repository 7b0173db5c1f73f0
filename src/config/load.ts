/**
 * @module config/load
 * Reads the config file, applies the per-host environment overrides, validates
 * and deep-freezes the result. Every problem is reported in one error.
 * Must not: start anything or keep state.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
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

/** The largest config file read, in bytes; a larger one is rejected unread. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The longest a config read may take, in ms (a hung network file system). */
export const CONFIG_READ_TIMEOUT_MS = 5_000;

/**
 * Loads the config from `file` (or the embedded defaults when undefined),
 * with `env` overrides applied. Throws GPR_ERR_CONFIG_READ (also for a file
 * that is not a regular file, or a read over {@link CONFIG_READ_TIMEOUT_MS}),
 * GPR_ERR_CONFIG_TOO_LARGE, or GPR_ERR_CONFIG_INVALID (message lists every
 * problem with its field path).
 */
export async function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = {}): Promise<Config> {
  let raw: unknown = {};
  if (file !== undefined) {
    const text = await readBounded(file);
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw gprError('GPR_ERR_CONFIG_INVALID', [` in ${file}`, `  not valid JSON: ${(err as Error).message}`], err);
    }
  }
  return parseConfig(raw, env, file);
}

/**
 * Reads `file` within {@link CONFIG_READ_TIMEOUT_MS} and {@link MAX_CONFIG_BYTES}.
 * O_NONBLOCK makes open(2) of a FIFO return at once instead of waiting for
 * a writer on a thread-pool thread, which would also hold up the exit
 * (Node joins those threads); fstat then rejects anything but a regular file.
 */
async function readBounded(file: string): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(gprError('GPR_ERR_CONFIG_READ', [file, `no answer within ${CONFIG_READ_TIMEOUT_MS} ms`])), CONFIG_READ_TIMEOUT_MS);
    timer.unref();
  });
  const read = (async () => {
    let handle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw gprError('GPR_ERR_CONFIG_READ', [file, (err as Error).message], err);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw gprError('GPR_ERR_CONFIG_READ', [file, 'not a regular file (a FIFO, socket or device cannot be a config)']);
      if (stat.size > MAX_CONFIG_BYTES) throw gprError('GPR_ERR_CONFIG_TOO_LARGE', [file, stat.size, `${MAX_CONFIG_BYTES} bytes (1 MiB)`]);
      // The file may grow between fstat and read: read one byte past the limit to notice.
      const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > MAX_CONFIG_BYTES) throw gprError('GPR_ERR_CONFIG_TOO_LARGE', [file, `more than ${MAX_CONFIG_BYTES}`, `${MAX_CONFIG_BYTES} bytes (1 MiB)`]);
      }
      return buf.toString('utf8', 0, length);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('GPR_ERR_')) throw err;
      throw gprError('GPR_ERR_CONFIG_READ', [file, (err as Error).message], err);
    } finally {
      await handle.close();
    }
  })();
  read.catch(() => {}); // settled late after a timeout: already reported
  try {
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
  }
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
