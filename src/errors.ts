/**
 * @module errors
 * The one table of error codes: a stable `GPR_ERR_*` code, the HTTP status it
 * answers with (0 when it is not a request error) and a message template.
 * Callers match on `err.code`, never on `instanceof`. Every code here is
 * documented in docs/errors.md; test/unit/errors.test.ts keeps the two equal.
 * Must not: import anything, or decide which status a client gets (see status.ts).
 */

/** Code table. `%s` placeholders are filled in order by {@link gprError}. */
export const errorTable = {
  GPR_ERR_NOT_PROXY_PATH: { status: 404, message: '%s is not a Go module proxy path' },
  GPR_ERR_BAD_MODULE_PATH: { status: 400, message: 'invalid module path %s: %s' },
  GPR_ERR_BAD_VERSION: { status: 400, message: 'invalid version %s: %s' },
  GPR_ERR_BAD_ENCODING: { status: 400, message: 'invalid request path encoding: %s' },
  GPR_ERR_PATH_TOO_LONG: { status: 414, message: 'request path is %s bytes, the limit is %s' },
  GPR_ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'method %s is not allowed: the Go module proxy protocol uses GET (and HEAD)' },
  GPR_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request headers are larger than %s bytes' },
  GPR_ERR_BAD_REQUEST: { status: 400, message: 'malformed HTTP request: %s' },
  GPR_ERR_REQUEST_TIMEOUT: { status: 408, message: 'request headers did not arrive within %s ms' },
  GPR_ERR_TOO_MANY_CONNECTIONS: { status: 0, message: 'connection refused: %s connections are open (limits.maxConnections)' },
  GPR_ERR_MISDIRECTED: { status: 421, message: 'Host %s does not match the TLS server name %s' },
  GPR_ERR_LOOP: { status: 508, message: 'request loop: it already passed through go-proxy-rewriter (Via: %s); the upstream or the interception rules point back at the proxy' },
  GPR_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'backend %s did not answer within %s ms' },
  GPR_ERR_UPSTREAM_UNREACHABLE: { status: 502, message: 'backend %s is unreachable: %s' },
  GPR_ERR_UPSTREAM_STATUS: { status: 502, message: 'backend %s answered %s' },
  GPR_ERR_UPSTREAM_BODY: { status: 502, message: 'backend %s broke off the response body: %s' },
  GPR_ERR_UPSTREAM_COOLING: { status: 502, message: 'backend %s is skipped after %s failures in a row; it is probed again in %s s' },
  GPR_ERR_UPSTREAM_TOKEN: { status: 0, message: 'upstream %s: auth token: %s' },
  GPR_ERR_SUMDB_UNKNOWN: { status: 404, message: 'checksum database %s is not configured here (config "sumdb"); the go command connects to it directly or fails as GOSUMDB/GONOSUMDB say' },
  GPR_ERR_SUMDB_PRIVATE: { status: 403, message: 'module %s is private here (pattern %s): its name is not sent to a checksum database; set GOPRIVATE or GONOSUMDB to that pattern' },
  GPR_ERR_PRIVATE_REFUSED: { status: 403, message: 'module %s is private (pattern %s) and not served by this proxy' },
  GPR_ERR_PRIVATE_NOT_HERE: { status: 404, message: 'module %s is private (pattern %s) and not served by this proxy; set GOPRIVATE so the go command fetches it directly' },
  GPR_ERR_CLIENT_GONE: { status: 499, message: 'client closed the connection before the response was complete' },
  GPR_ERR_SHUTTING_DOWN: { status: 503, message: 'the proxy is shutting down' },
  GPR_ERR_INTERNAL: { status: 500, message: 'internal error: %s' },
  GPR_ERR_CONFIG_READ: { status: 0, message: 'cannot read config file %s: %s' },
  GPR_ERR_CONFIG_TOO_LARGE: { status: 0, message: 'config file %s is %s bytes; the limit is %s' },
  GPR_ERR_CONFIG_INVALID: { status: 0, message: 'invalid config%s:\n%s' },
  GPR_ERR_LISTEN: { status: 0, message: 'cannot listen on %s (%s): %s' },
  GPR_ERR_LISTEN_FDS: { status: 0, message: 'socket activation: %s' },
  GPR_ERR_CA_EXISTS: { status: 0, message: 'a CA already exists in %s; pass --force to replace it' },
  GPR_ERR_CA_MISSING: { status: 0, message: 'no CA in %s; run `go-proxy-rewriter certs init` first' },
  GPR_ERR_CA_INVALID: { status: 0, message: 'CA %s is unusable: %s' },
  GPR_ERR_CERT_INVALID: { status: 0, message: 'certificate %s is unusable: %s' },
  GPR_ERR_TLS_NAME_REFUSED: { status: 0, message: 'TLS server name %s is not in tls.hosts' },
  GPR_ERR_TLS_CLIENT_CERT_REFUSED: { status: 0, message: 'TLS client %s presented no client certificate, or one tls.clientCa does not verify (%s)' },
  GPR_ERR_NOTIFY: { status: 0, message: 'sd_notify failed: %s' },
  GPR_ERR_WORKER: { status: 0, message: 'worker %s (pid %s) %s' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorTable;

/** An error with a stable code and, for request errors, an HTTP status. */
export interface GprError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
}

function format(template: string, args: readonly unknown[]): string {
  let i = 0;
  return template.replace(/%s/g, () => String(i < args.length ? args[i++] : ''));
}

/** Makes the error for `code`, filling the template's `%s` with `args` in order. */
export function gprError(code: ErrorCode, args: readonly unknown[] = [], cause?: unknown): GprError {
  const entry = errorTable[code];
  const err = new Error(format(entry.message, args), cause === undefined ? undefined : { cause }) as Error & {
    code: ErrorCode;
    status: number;
  };
  err.name = 'GprError';
  err.code = code;
  err.status = entry.status;
  return err;
}

/** True when `err` carries one of our codes (whatever copy of this module made it). */
export function isGprError(err: unknown): err is GprError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (err as { code: string }).code in errorTable
  );
}
