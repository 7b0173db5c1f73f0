/**
 * @module server/limits
 * The default of `limits.maxConnections`, from the process's open-file
 * limit (RLIMIT_NOFILE, read from /proc/self/limits; Node raises the soft
 * limit to the hard one at start, so this is what the process may open).
 * Must not: change the limit.
 */
import { readFileSync } from 'node:fs';

/** Descriptors kept for everything but client connections: listeners, admin clients, logs, config and cache files. */
export const RESERVED_FDS = 64;

/** The most client connections a default allows, even with an unlimited fd limit. */
export const MAX_DEFAULT_CONNECTIONS = 100_000;

/** The soft open-file limit, or undefined when /proc is not readable. "unlimited" is Infinity. */
export function openFileLimit(limitsText?: string): number | undefined {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/**
 * Default client connection cap: what the fd limit leaves after
 * {@link RESERVED_FDS} and the backend sockets (`backendSockets` per
 * runtime; two runtimes are open during a reload), at least 16.
 * 1024 open files and 256 backend sockets give 448.
 */
export function defaultMaxConnections(fdLimit: number | undefined, backendSockets: number): number {
  if (fdLimit === undefined) return 1024;
  return Math.min(MAX_DEFAULT_CONNECTIONS, Math.max(16, fdLimit - RESERVED_FDS - 2 * backendSockets));
}
