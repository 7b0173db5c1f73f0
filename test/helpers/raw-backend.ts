// Test helper: a misbehaving backend on a raw TCP socket (port 0). Each
// request's path goes to a scenario that writes whatever bytes it likes (a
// lying Content-Length, a chunked body without its terminator, a reset, a
// hang), so the proxy's handling of broken framing can be tested. Also a
// client GET that reports a cut connection instead of throwing. Must not
// import from src/.
import http from 'node:http';
import net from 'node:net';
import { onTestFinished } from 'vitest';

export type Scenario = (socket: net.Socket, path: string) => void;

export interface RawBackend {
  url: string;
  /** Paths in arrival order. */
  requests: string[];
  count(path: string): number;
}

/** Starts a raw backend; `scenario` answers every request (one per connection). */
export async function rawBackend(scenario: Scenario): Promise<RawBackend> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    // Keep-alive: every request head on the connection gets the scenario.
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      let end: number;
      while ((end = head.indexOf('\r\n\r\n')) !== -1) {
        const path = head.split(' ')[1] ?? '';
        head = head.slice(end + 4);
        requests.push(path);
        scenario(socket, path);
      }
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, requests, count: (p) => requests.filter((r) => r === p).length };
}

/** What a client got: head, body bytes, and whether the connection was cut before the body was complete. */
export interface Outcome {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  cut: boolean;
}

/** GETs `url` on a fresh connection; a cut after the head resolves with `cut: true`. */
export function fetchOutcome(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const done = (cut: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), cut });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(!res.complete));
      res.on('error', () => done(true));
      res.on('close', () => done(!res.complete));
    });
    req.on('error', reject);
  });
}
