/**
 * @module log
 * The pino factory and every per-request log line: one access line per
 * request, at its end, with fixed fields. Lifecycle messages are fixed strings
 * too (see `lifecycle`). journald reads stdout.
 * Must not: log bodies, Authorization or cookies.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** The fixed lifecycle messages; tests and operators grep for these. */
export const lifecycle = {
  listening: 'listening',
  reloaded: 'config reloaded',
  reloadFailed: 'config reload failed',
  draining: 'draining',
  stopped: 'stopped',
} as const;

/** What the access line says about one request. */
export interface AccessFields {
  reqId: string;
  method: string;
  host: string;
  path: string;
  upstreamPath: string | null;
  status: number;
  cache: 'HIT' | 'MISS' | 'STALE' | 'BYPASS' | null;
  bytes: number;
  durationMs: number;
  upstreamMs: number | null;
  err: string | null;
}

export interface LoggerOptions {
  level: string;
  /** Where lines go; default stdout (asynchronously, flushed on stop). */
  destination?: DestinationStream;
}

/** Creates the process logger. */
export function createLogger(opts: LoggerOptions): Logger {
  // minLength 1, not 0: each line is still written at once (any buffered
  // byte reaches it), but flush(cb) then waits for the write in flight;
  // with 0 sonic-boom calls back at once, close() exits mid-write and the
  // exit hook's flushSync can put `stopped` before `draining`.
  const destination = opts.destination ?? pino.destination({ dest: 1, sync: false, minLength: 1 });
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'], censor: '[redacted]' },
    },
    destination,
  );
}

/** Writes the one access line of a request: `error` level for 5xx, else `info`. */
export function accessLog(log: Logger, fields: AccessFields): void {
  if (fields.status >= 500) log.error(fields, 'request');
  else log.info(fields, 'request');
}
