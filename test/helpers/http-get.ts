// Test helper: one GET (or HEAD) over http or https with Node's client, body buffered,
// and the facts a lifecycle test classifies failures by: whether the request
// went out on a reused keep-alive socket, and the error code. Must not: retry
// (callers decide what a retry means) or follow redirects.
import http from 'node:http';
import https from 'node:https';

/** A response, with `reusedSocket` from the request. */
export interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reusedSocket: boolean;
}

/** A failed GET: the system error code and whether its socket was a reused keep-alive one. */
export interface GetError extends Error {
  code?: string;
  reusedSocket: boolean;
  /** True when part of the response had arrived before the failure. */
  gotResponse: boolean;
}

/** Options of {@link get}. */
export interface GetOptions {
  /** Default `GET`. */
  method?: 'GET' | 'HEAD';
  /** Default `false`: a new connection with `Connection: close`. */
  agent?: http.Agent | false;
  headers?: http.OutgoingHttpHeaders;
  /** TLS: the CA to trust (PEM) and the SNI name to send. */
  ca?: string | Buffer;
  servername?: string;
  /** Fail after this many ms without an answer. Default 20 000. */
  timeoutMs?: number;
}

/** GETs `url`; rejects with a {@link GetError}. */
export function get(url: string, opts: GetOptions = {}): Promise<Got> {
  const secure = url.startsWith('https:');
  const headers = { ...(opts.agent ? {} : { connection: 'close' }), ...opts.headers };
  return new Promise((resolve, reject) => {
    let gotResponse = false;
    const tls = secure ? { ca: opts.ca, servername: opts.servername } : {};
    const req = (secure ? https : http).request(url, { method: opts.method ?? 'GET', agent: opts.agent ?? false, headers, ...tls }, (res) => {
      gotResponse = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), reusedSocket: req.reusedSocket }));
      res.on('error', fail);
    });
    function fail(err: Error): void {
      reject(Object.assign(err, { reusedSocket: req.reusedSocket, gotResponse }));
    }
    req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(Object.assign(new Error(`no answer from ${url} within ${opts.timeoutMs ?? 20_000} ms`), { code: 'TEST_TIMEOUT' })));
    req.on('error', fail);
    req.end();
  });
}
