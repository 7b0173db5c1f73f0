// Test helper: a bounded client load for lifecycle tests. Workers loop GETs
// over a list of paths, some on keep-alive connections (one shared
// http.Agent), some on a new connection each (`Connection: close`), until
// stopped, and record every attempt: status, whether the body was right,
// whether the socket was a reused keep-alive one, the `Connection` header of
// the previous answer on that socket, and the error if any. Each request
// carries a unique Host header (`rN.loop.test`), which the proxy's access line
// repeats, so a test can tell whether the server ever read a failed request.
// Retry policy, the one the go command's HTTP client (and Node's docs on
// `request.reusedSocket`) follow: a GET that failed on a reused keep-alive
// socket before any byte of an answer is sent again, up to 3 times.
// Must not: retry anything else.
import http from 'node:http';
import type { Socket } from 'node:net';

/** One request attempt. */
export interface Attempt {
  id: number;
  /** The Host header it carried. */
  host: string;
  path: string;
  keepAlive: boolean;
  /** Wall-clock ms (Date.now(), comparable with pino's `time`). */
  startedAt: number;
  endedAt: number;
  /** The attempt this one repeats. */
  retryOf?: number;
  reusedSocket: boolean;
  /** `Connection` header of the answer before this one on the same socket; undefined on a new socket. */
  previousConnection?: string;
  status?: number;
  connection?: string;
  bodyOk?: boolean;
  error?: { code?: string; message: string; gotResponse: boolean };
}

export interface LoopOptions {
  /** Base URL, e.g. http://127.0.0.1:PORT. */
  url: string;
  paths: readonly string[];
  /** Expected body per path. */
  bodies: ReadonlyMap<string, string>;
  keepAliveWorkers: number;
  closeWorkers: number;
  /** Per-request timeout in ms. Default 20 000. */
  timeoutMs?: number;
}

export interface RequestLoop {
  readonly attempts: Attempt[];
  /** Stops issuing requests; resolves once every worker's last request settled. */
  stop(): Promise<void>;
}

/** Starts the workers at once. */
export function startRequestLoop(opts: LoopOptions): RequestLoop {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.keepAliveWorkers });
  const lastConnection = new WeakMap<Socket, string>();
  const attempts: Attempt[] = [];
  let running = true;
  let ids = 0;

  function once(path: string, keepAlive: boolean, retryOf?: number): Promise<Attempt> {
    const id = ++ids;
    const host = `r${id}.loop.test`;
    const attempt: Attempt = { id, host, path, keepAlive, startedAt: Date.now(), endedAt: 0, reusedSocket: false, ...(retryOf ? { retryOf } : {}) };
    attempts.push(attempt);
    return new Promise((resolve) => {
      let gotResponse = false;
      let settled = false;
      const finish = (err?: Error & { code?: string }) => {
        if (settled) return;
        settled = true;
        attempt.endedAt = Date.now();
        attempt.reusedSocket = req.reusedSocket;
        if (err) attempt.error = { code: err.code, message: err.message, gotResponse };
        resolve(attempt);
      };
      const req = http.request(opts.url + path, { agent: keepAlive ? agent : false, headers: { host, ...(keepAlive ? {} : { connection: 'close' }) } }, (res) => {
        gotResponse = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', finish);
        res.on('end', () => {
          attempt.status = res.statusCode;
          attempt.connection = res.headers.connection;
          attempt.bodyOk = Buffer.concat(chunks).toString() === opts.bodies.get(path);
          if (req.socket) lastConnection.set(req.socket, res.headers.connection ?? '');
          finish();
        });
      });
      req.on('socket', (socket) => {
        const previous = lastConnection.get(socket);
        if (previous !== undefined) attempt.previousConnection = previous;
      });
      req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(Object.assign(new Error('request timed out'), { code: 'TEST_TIMEOUT' })));
      req.on('error', finish);
      req.end();
    });
  }

  async function worker(w: number, keepAlive: boolean): Promise<void> {
    for (let i = w; running; i++) {
      const path = opts.paths[i % opts.paths.length]!;
      let attempt = await once(path, keepAlive);
      for (let retry = 0; retry < 3 && attempt.error && attempt.reusedSocket && !attempt.error.gotResponse; retry++) {
        attempt = await once(path, keepAlive, attempt.id);
      }
    }
  }

  const workers = [
    ...Array.from({ length: opts.keepAliveWorkers }, (_, w) => worker(w, true)),
    ...Array.from({ length: opts.closeWorkers }, (_, w) => worker(w, false)),
  ];
  return {
    attempts,
    async stop() {
      running = false;
      await Promise.all(workers);
      agent.destroy();
    },
  };
}
