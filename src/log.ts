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

/**
 * Lines are written in batches of this many bytes, or every {@link LOG_FLUSH_MS}.
 * Each batch is one write(2) on the thread pool; 4 KiB batches (about a dozen
 * access lines) cost about a microsecond of CPU per line more than these.
 */
export const LOG_BATCH_BYTES = 16 * 1024;
/** The longest a line waits in the batch, in ms. */
export const LOG_FLUSH_MS = 100;

/** Creates the process logger. */
export function createLogger(opts: LoggerOptions): Logger {
  let destination = opts.destination;
  if (!destination) {
    // One write per line costs a syscall on the thread pool each: measured
    // 19 vs 14 µs of CPU per cached .info. Batches, flushed at least every
    // 100 ms so a quiet proxy's lines still reach journald at once.
    // (minLength > 0 also makes flush(cb) wait for the write in flight, which
    // close() relies on to exit after its last line.)
    destination = batchedStdout();
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
 * stdout through sonic-boom in buffer mode, each line turned into a Buffer
 * as it arrives. In its default (string) mode sonic-boom appends every line
 * to one growing string and measures that string's UTF-8 length again on each
 * line, and hands the thread pool a string to encode: under load that was 15 %
 * of a worker's CPU (the `byteLength` and `writeString` of the profile in
 * README "Access log"). Holds no lines itself, so pino's exit hook
 * (flushSync) still writes everything.
 */
function batchedStdout(): DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void } {
  const sonic = pino.destination({ dest: 1, sync: false, contentMode: 'buffer', minLength: LOG_BATCH_BYTES, maxWrite: 4 * LOG_BATCH_BYTES, maxLength: MAX_LOG_BUFFER_BYTES });
  setInterval(() => sonic.flush(), LOG_FLUSH_MS).unref();
  // sonic-boom's types predate contentMode 'buffer', whose write takes a Buffer.
  const writeBuffer = sonic.write.bind(sonic) as unknown as (data: Buffer) => boolean;
  return {
    write: (line: string) => writeBuffer(Buffer.from(line)),
    flush: (cb?: (err?: Error) => void) => sonic.flush(cb),
    flushSync: () => sonic.flushSync(),
  };
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
 * `info`), when `mode` keeps it. Host and path are escaped first. The line is
 * the one pino would write for `log[level](fields, 'request')`, built by hand
 * (see {@link accessLine}).
 */
export function accessLog(log: Logger, fields: AccessFields, mode: AccessMode = 'all'): void {
  if (mode === 'off' || (mode === 'errors' && !isErrorLine(fields.status, fields.err))) return;
  const level = accessLevel(fields.status, fields.err);
  if (LEVEL_VALUES[level] < log.levelVal) return;
  fields.host = escapeControls(fields.host);
  fields.path = escapeControls(fields.path);
  if (!handBuilt(log)) return log[level](fields, 'request');
  ((log as unknown as PinoInternals)[pino.symbols.streamSym] as DestinationStream).write(accessLine(log, LEVEL_VALUES[level], fields));
}

/** pino's numbers of the access line's levels. */
const LEVEL_VALUES = { error: 50, warn: 40, info: 30 } as const;

/** The parts of a pino logger the hand-built line reads: pino's own prefix, time, bindings and end, so it matches the logger's options. */
interface PinoInternals {
  [key: symbol]: unknown;
}

/** The access line's keys, in pino's order (the order of {@link AccessFields}). */
const ACCESS_KEYS = ['reqId', 'method', 'host', 'path', 'upstreamPath', 'status', 'cache', 'bytes', 'durationMs', 'upstreamMs', 'err'] as const satisfies ReadonlyArray<keyof AccessFields>;

const handBuiltOk = new WeakMap<Logger, boolean>();
/** pino's msgPrefix symbol (exported at run time, missing from its types). */
const MSG_PREFIX = (pino.symbols as unknown as Record<string, symbol>).msgPrefixSym as symbol;

/**
 * Whether {@link accessLine} writes exactly what pino would for `log`: not
 * when `log` has a mixin, hooks, a log formatter, a nested key, a message
 * prefix, a serializer or a redaction of an access field (pino's default `err`
 * serializer passes strings through), or a destination that wants the line's
 * metadata (pino.multistream). Our loggers (createLogger and its children)
 * have none of these; a logger passed in by a test or an embedder might.
 */
export function handBuilt(log: Logger): boolean {
  let ok = handBuiltOk.get(log);
  if (ok === undefined) {
    const l = log as unknown as PinoInternals;
    const s = pino.symbols;
    const serializers = l[s.serializersSym] as Record<string, unknown>;
    const stringifiers = l[s.stringifiersSym] as Record<string | symbol, unknown>;
    const formatters = l[s.formattersSym] as { log?: unknown };
    const hooks = l[s.hooksSym] as { streamWrite?: unknown } | undefined;
    const stream = l[s.streamSym] as Record<symbol, unknown> & { write?: unknown };
    ok =
      !l[s.mixinSym] &&
      !hooks?.streamWrite &&
      !formatters.log &&
      !l[s.nestedKeySym] &&
      !l[MSG_PREFIX] &&
      l[s.messageKeySym] === 'msg' &&
      !stringifiers[s.wildcardFirstSym] &&
      ACCESS_KEYS.every((k) => !stringifiers[k] && (!serializers[k] || (k === 'err' && serializers[k] === pino.stdSerializers.err))) &&
      stream[s.needsMetadataGsym] !== true &&
      typeof stream.write === 'function';
    handBuiltOk.set(log, ok);
  }
  return ok;
}

/**
 * The access line as pino writes it for `log[level](fields, 'request')`:
 * `{"level":N,"time":T` and the logger's bindings (pid, worker), the fields in
 * {@link ACCESS_KEYS} order, `"msg":"request"}` and the newline. Strings are
 * escaped as pino escapes them ({@link jsonString}); numbers that are not
 * finite become null, as in pino. Building it directly saves pino's generic
 * walk over the object (its `asJson`: 6 % of a worker's CPU on a HIT).
 */
export function accessLine(log: Logger, level: number, f: AccessFields): string {
  const l = log as unknown as PinoInternals;
  const s = pino.symbols;
  return (
    (l[s.lsCacheSym] as Record<number, string>)[level]! +
    (l[s.timeSym] as () => string)() +
    (l[s.chindingsSym] as string) +
    ',"reqId":' +
    jsonString(f.reqId) +
    ',"method":' +
    jsonString(f.method) +
    ',"host":' +
    jsonString(f.host) +
    ',"path":' +
    jsonString(f.path) +
    ',"upstreamPath":' +
    (f.upstreamPath === null ? 'null' : jsonString(f.upstreamPath)) +
    ',"status":' +
    jsonNumber(f.status) +
    ',"cache":' +
    (f.cache === null ? 'null' : jsonString(f.cache)) +
    ',"bytes":' +
    jsonNumber(f.bytes) +
    ',"durationMs":' +
    jsonNumber(f.durationMs) +
    ',"upstreamMs":' +
    (f.upstreamMs === null ? 'null' : jsonNumber(f.upstreamMs)) +
    ',"err":' +
    (f.err === null ? 'null' : jsonString(f.err)) +
    ',"msg":"request"' +
    (l[s.endSym] as string)
  );
}

function jsonNumber(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}

/**
 * A string as a JSON string, exactly as pino writes it (lib/tools.js
 * `asString`): printable ASCII without `"` or `\` as it is (the fast path:
 * every field of an ordinary request); over 100 characters, or with a
 * character below U+0020, JSON.stringify; otherwise `"` and `\` escaped and
 * the rest as it is (non-ASCII stays UTF-8 text, as in JSON.stringify).
 */
export function jsonString(str: string): string {
  const n = str.length;
  if (n > 100) return JSON.stringify(str);
  for (let i = 0; i < n; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return jsonStringSlow(str);
  }
  return `"${str}"`;
}

function jsonStringSlow(str: string): string {
  for (let i = 0; i < str.length; i++) if (str.charCodeAt(i) < 0x20) return JSON.stringify(str);
  return `"${str.replace(QUOTE_OR_BACKSLASH, '\\$&')}"`;
}

const QUOTE_OR_BACKSLASH = /["\\]/g;

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
