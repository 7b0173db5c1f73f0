/**
 * @module server/h2-compat
 * Lets the HTTP/1.1 request handler answer HTTP/2 streams (node:http2's
 * compatibility API, `allowHTTP1: true`): Host comes from `:authority`
 * (RFC 9113 8.3.1: a client sends `:authority` instead of Host, and the go
 * command does), and connection-specific header fields (RFC 9113 8.2.2:
 * Connection, Keep-Alive, Transfer-Encoding, ...), which node:http2 refuses
 * with ERR_HTTP2_INVALID_CONNECTION_HEADERS, are dropped: the drain's
 * `Connection: close` and a backend's `Transfer-Encoding` mean nothing on a
 * stream (a drain ends an HTTP/2 connection with GOAWAY).
 * Must not: change HTTP/1.x answers.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

function strip(headers: unknown): unknown {
  if (Array.isArray(headers)) {
    // [[name, value], ...] or the flat [name, value, name, value, ...] writeHead also takes.
    if (headers.length > 0 && Array.isArray(headers[0])) return (headers as Array<[string, unknown]>).filter(([k]) => !CONNECTION_SPECIFIC.has(String(k).toLowerCase()));
    const out: unknown[] = [];
    for (let i = 0; i < headers.length; i += 2) if (!CONNECTION_SPECIFIC.has(String(headers[i]).toLowerCase())) out.push(headers[i], headers[i + 1]);
    return out;
  }
  if (headers && typeof headers === 'object') {
    const out: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers as OutgoingHttpHeaders)) if (!CONNECTION_SPECIFIC.has(k.toLowerCase())) out[k] = v;
    return out;
  }
  return headers;
}

/**
 * Wraps `handler` for an http2 secure server with allowHTTP1: HTTP/1.1
 * requests pass through untouched; each HTTP/2 request gets Host and a
 * response that drops connection-specific headers.
 */
export function h2Compatible(handler: Handler): Handler {
  return function handleH2OrH1(req, res) {
    if (req.httpVersionMajor !== 2) return handler(req, res);
    if (req.headers.host === undefined) req.headers.host = (req as unknown as Http2ServerRequest).authority;
    // The compat response's own methods, bound, then shadowed on this instance only.
    const setHeader = res.setHeader.bind(res);
    const writeHead = res.writeHead.bind(res) as (status: number, ...rest: unknown[]) => ServerResponse;
    res.setHeader = (name, value) => (CONNECTION_SPECIFIC.has(name.toLowerCase()) ? res : setHeader(name, value));
    res.writeHead = ((status: number, ...rest: unknown[]) => writeHead(status, ...rest.map((r) => (typeof r === 'string' ? r : strip(r))))) as ServerResponse['writeHead'];
    handler(req, res);
  };
}
