/**
 * @module log
 * The pino factory and every per-request log line: one access line per
 * request, at its end, with fixed fields. Lifecycle messages are fixed strings
 * too (see `lifecycle`). journald reads stdout.
 * Must not: log bodies, Authorization or cookies.
 */
import { fstatSync } from 'node:fs';
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
  /** `journal`: prefix lines with their journald priority; `auto` (default): only when stdout is the journal. */
  format?: LogFormat;
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
  if (journalFormat(opts.format ?? 'auto', process.env, !opts.destination)) destination = withJournalPriority(destination);
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

/** `log.format`: see {@link journalFormat}. */
export type LogFormat = 'auto' | 'json' | 'journal';

/**
 * Whether lines get a `<N>` priority prefix: `journal` always, `json` never,
 * `auto` when the lines go to stdout (`toStdout`, default true) and stdout
 * is the journal's stream, i.e. JOURNAL_STREAM (set by systemd,
 * systemd.exec(5)) names fd 1's device and inode. A child whose stdout was
 * redirected elsewhere inherits the variable but fails the match.
 */
export function journalFormat(format: LogFormat, env: NodeJS.ProcessEnv, toStdout = true): boolean {
  if (format !== 'auto') return format === 'journal';
  if (!toStdout) return false;
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(1, { bigint: true });
    return st.dev === BigInt(m[1] as string) && st.ino === BigInt(m[2] as string);
  } catch {
    return false;
  }
}

/**
 * journald priority (syslog severity) of a pino level: 60 fatal -> 2 crit,
 * 50 error -> 3 err, 40 warn -> 4 warning, 30 info -> 6 info, 20 debug and
 * 10 trace -> 7 debug. (No level maps to 5 notice.)
 */
export function journalPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/**
 * Makes `destination` prefix each line with `<N>`, its journald priority,
 * which journald strips and stores as PRIORITY= (SyslogLevelPrefix=, on by
 * default, set explicitly in go-proxy-rewriter.service). Why a prefix and not
 * the journal's native protocol: that is an AF_UNIX datagram per line, which
 * Node cannot send (see systemd/notify.ts), and a stdout stream keeps the
 * batching above. pino writes one line per write() and starts it with
 * `{"level":N`, so the level is read from there; a line without it is left
 * as it is (stored at the stream's default, info). Changes `destination` in
 * place and returns it.
 */
export function withJournalPriority<T extends DestinationStream>(destination: T): T {
  const write = destination.write.bind(destination);
  destination.write = (line: string) => {
    const level = line.startsWith('{"level":') ? Number.parseInt(line.slice(9, 12), 10) : Number.NaN;
    return Number.isNaN(level) ? write(line) : write(`<${journalPriority(level)}>${line}`);
  };
  return destination;
}
