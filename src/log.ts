/**
 * @module log
 * The pino factory and every per-request log line: one access line per
 * request, at its end, with fixed fields. Lifecycle messages are fixed strings
 * too (see `lifecycle`). journald reads stdout.
 * Must not: log bodies, Authorization or cookies.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { accessLevel, isErrorLine } from './status.js';

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
  /** Where lines go; default stdout, in batches (see {@link LOG_BATCH_BYTES}), flushed on stop. */
  destination?: DestinationStream;
}

/**
 * Lines waiting for stdout beyond this are dropped rather than buffered
 * without bound when the journal reads slower than requests arrive (measured:
 * 25 MiB queued after 10 s at 42k req/s).
 */
export const MAX_LOG_BUFFER_BYTES = 16 * 1024 * 1024;

/** Lines are written in batches of this many bytes, or every {@link LOG_FLUSH_MS}. */
export const LOG_BATCH_BYTES = 4096;
/** The longest a line waits in the batch, in ms. */
export const LOG_FLUSH_MS = 100;

/** Creates the process logger. */
export function createLogger(opts: LoggerOptions): Logger {
  let destination = opts.destination;
  if (!destination) {
    // One write per line costs a syscall on the thread pool each: measured
    // 19 vs 14 µs of CPU per cached .info. Batches of 4 KiB, flushed at least
    // every 100 ms so a quiet proxy's lines still reach journald at once.
    // (minLength > 0 also makes flush(cb) wait for the write in flight, which
    // close() relies on to exit after its last line.)
    const stdout = pino.destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES, maxLength: MAX_LOG_BUFFER_BYTES });
    setInterval(() => stdout.flush(), LOG_FLUSH_MS).unref();
    destination = stdout;
  }
  return pino(
    {
      level: opts.level,
      base: { pid: process.pid },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'], censor: '[redacted]' },
    },
    destination,
  );
}

/**
 * Writes a lifecycle line (see {@link lifecycle}) and flushes the batch, so
 * journald and anyone waiting on it see it at once.
 */
export function announce(log: Logger, level: 'info' | 'warn' | 'error', fields: object, msg: (typeof lifecycle)[keyof typeof lifecycle]): void {
  log[level](fields, msg);
  log.flush();
}

/**
 * Which requests get an access line (config `log.access`): every one, only
 * 4xx/5xx and errors, or none. The line costs about a quarter of the CPU of
 * a cache hit (measured: see README "Access log").
 */
export type AccessMode = 'all' | 'errors' | 'off';

/**
 * Writes the one access line of a request, at the level status.ts decides
 * (`error` for 5xx and server faults, `warn` for a client that left, else
 * `info`), when `mode` keeps it. Host and path are escaped first.
 */
export function accessLog(log: Logger, fields: AccessFields, mode: AccessMode = 'all'): void {
  if (mode === 'off' || (mode === 'errors' && !isErrorLine(fields.status, fields.err))) return;
  fields.host = escapeControls(fields.host);
  fields.path = escapeControls(fields.path);
  log[accessLevel(fields.status, fields.err)](fields, 'request');
}

// C0, DEL and C1 (U+0080-U+009F): JSON escapes only C0, and a raw C1 control
// (NEL, CSI ...) from a Host header reaches terminals and log viewers.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/** Replaces control characters (C0, DEL, C1) with `\xHH`, so a log line shows them without carrying them. */
export function escapeControls(s: string): string {
  CONTROLS.lastIndex = 0;
  if (!CONTROLS.test(s)) return s;
  return s.replace(CONTROLS, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The request target as it may be logged: without query string or fragment
 * (tokens), and an absolute-form target (`http://user:pass@host/p`) without
 * its userinfo.
 */
export function loggablePath(url: string): string {
  let end = url.length;
  const q = url.indexOf('?');
  if (q !== -1) end = q;
  const h = url.indexOf('#');
  if (h !== -1 && h < end) end = h;
  let path = end === url.length ? url : url.slice(0, end);
  if (path[0] !== '/') {
    const scheme = path.indexOf('://');
    const at = path.lastIndexOf('@');
    if (scheme !== -1 && at > scheme) {
      const slash = path.indexOf('/', scheme + 3);
      if (slash === -1 || at < slash) path = path.slice(0, scheme + 3) + path.slice(at + 1);
    }
  }
  return path;
}

let lastReqId = 0;
const reqIdPrefix = process.pid.toString(36);

/** A request id, unique in this process and across processes (pid prefix); also sent as X-Request-Id. */
export function nextRequestId(): string {
  return `${reqIdPrefix}-${(++lastReqId).toString(36)}`;
}
