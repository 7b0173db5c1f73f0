/**
 * @module status
 * The one place that decides which HTTP status a client gets and how its
 * access line is rated: the error table's status, the `onUpstreamFailure:
 * "notfound"` policy, 499 for a client that left, the answers to requests
 * Node's parser rejected, and which backend statuses count as failures.
 * Must not: do I/O or know about sockets, the cache or the backend client
 * (it is pure: callers pass the facts in).
 */
import { errorTable, type ErrorCode } from './errors.js';

/** What to do when the backend fails and no stale copy is cached (config `onUpstreamFailure`). */
export type UpstreamFailurePolicy = 'notfound' | 'error';

/** Codes of backend failures that the `notfound` policy turns into 404. */
const UPSTREAM_FAILURES: ReadonlySet<ErrorCode> = new Set(['GPR_ERR_UPSTREAM_TIMEOUT', 'GPR_ERR_UPSTREAM_UNREACHABLE', 'GPR_ERR_UPSTREAM_STATUS', 'GPR_ERR_UPSTREAM_COOLING']);

/** Codes that are the server's or the backend's fault: their access line is at error level. */
const SERVER_FAULTS: ReadonlySet<ErrorCode> = new Set([...UPSTREAM_FAILURES, 'GPR_ERR_UPSTREAM_BODY', 'GPR_ERR_INTERNAL']);

/**
 * A backend answer that is a failure, not an answer to pass on: 5xx and 429.
 * Failures are not cached, a stale copy is served instead when there is one,
 * and otherwise the client gets {@link errorStatus} of GPR_ERR_UPSTREAM_STATUS.
 */
export function isBackendFailure(status: number): boolean {
  return status >= 500 || status === 429;
}

/** The answer to an error: its status and whether the `notfound` policy replaced it. */
export interface ErrorAnswer {
  status: number;
  /** True when the client gets 404 so the go command tries its next GOPROXY entry. */
  fallthrough: boolean;
}

/** Which status a client gets for `code` under `policy`. */
export function errorStatus(code: ErrorCode, policy: UpstreamFailurePolicy): ErrorAnswer {
  // 404 makes the go command fall through to the next GOPROXY entry
  // (`direct` by default) instead of failing the build.
  if (policy === 'notfound' && UPSTREAM_FAILURES.has(code)) return { status: 404, fallthrough: true };
  return { status: errorTable[code].status, fallthrough: false };
}

/**
 * The code of a request Node's HTTP parser or server rejected before the
 * handler saw it (the server's `clientError` event), by Node's error code.
 */
export function clientErrorCode(nodeCode: string | undefined): ErrorCode {
  if (nodeCode === 'HPE_HEADER_OVERFLOW') return 'GPR_ERR_HEADERS_TOO_LARGE';
  // headersTimeout / requestTimeout expired: RFC 9110 §15.5.9.
  if (nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT') return 'GPR_ERR_REQUEST_TIMEOUT';
  return 'GPR_ERR_BAD_REQUEST';
}

/** How a response ended, as the access line records it. */
export interface Outcome {
  /** The status whose head was sent (res.statusCode). */
  statusCode: number;
  /** True when every byte of the response was handed to the connection. */
  finished: boolean;
  /** The error code recorded so far, if any. */
  err: ErrorCode | null;
}

/**
 * The status and error the access line records: the status sent, or 499
 * (GPR_ERR_CLIENT_GONE) when the client left before the response was
 * complete and nothing else explains it.
 */
export function finalStatus(o: Outcome): { status: number; err: ErrorCode | null } {
  if (o.finished || o.err) return { status: o.statusCode, err: o.err };
  return { status: errorTable.GPR_ERR_CLIENT_GONE.status, err: 'GPR_ERR_CLIENT_GONE' };
}

/** Log level of an access line. */
export type AccessLevel = 'error' | 'warn' | 'info';

/**
 * `error` for 5xx and for the server's or backend's faults (also when the
 * head already said 200, e.g. a backend that broke off mid-body); `warn` for
 * a transfer the client cut short (499); `info` otherwise.
 */
export function accessLevel(status: number, err: string | null): AccessLevel {
  if (status >= 500 || (err !== null && SERVER_FAULTS.has(err as ErrorCode))) return 'error';
  if (err === 'GPR_ERR_CLIENT_GONE') return 'warn';
  return 'info';
}

/** Whether `log.access: "errors"` keeps the line: every 4xx/5xx, and every line with an error. */
export function isErrorLine(status: number, err: string | null): boolean {
  return status >= 400 || err !== null;
}
