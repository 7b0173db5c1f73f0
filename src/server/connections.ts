/**
 * @module server/connections
 * The client connections of the proxy listeners: the `limits.maxConnections`
 * cap over all of them, which connections are busy (a response in progress or
 * bytes still queued for the client), and closing the idle ones during a drain.
 * Must not: answer requests or know about the admin listener (it is not
 * counted, so /healthz answers when the proxy listeners are full).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';

/** Per connection: responses not yet closed. */
const active = Symbol('gpr.activeResponses');
type Tracked = Socket & { [active]?: number };

export interface ConnectionsOptions {
  /** The cap, read for each new connection (a reload may change it). */
  maxConnections: () => number;
  /** A connection over the cap was closed unanswered. */
  onRefused: (open: number) => void;
}

export interface Connections {
  /** Counts and caps the connections of `server`; TLS servers track the TLS socket once the handshake is done. */
  track(server: Server, tls: boolean): void;
  /** Marks `req`'s connection busy until `res` closes; `onIdle` runs then. */
  busy(req: IncomingMessage, res: ServerResponse, onIdle: () => void): void;
  /** Responses not yet closed. */
  readonly responses: ReadonlySet<ServerResponse>;
  /** Open client connections (TCP, including TLS handshakes under way). */
  readonly open: number;
  /**
   * Closes the connections with no response in progress and nothing queued
   * to send. Unlike http.Server's closeIdleConnections(), a response whose
   * end() was called while its bytes still wait in the socket is not idle.
   */
  closeIdle(): void;
  /** Destroys every connection (the drain timed out). */
  closeAll(): void;
}

export function createConnections(opts: ConnectionsOptions): Connections {
  const raw = new Set<Socket>();
  const requestSockets = new Set<Tracked>();
  const responses = new Set<ServerResponse>();

  function isIdle(socket: Tracked): boolean {
    return !socket[active] && socket.writableLength === 0;
  }

  return {
    track(server, tls) {
      server.on('connection', (socket: Socket) => {
        if (raw.size >= opts.maxConnections()) {
          socket.destroy();
          opts.onRefused(raw.size);
          return;
        }
        raw.add(socket);
        socket.once('close', () => raw.delete(socket));
        if (!tls) requestSockets.add(socket);
        socket.once('close', () => requestSockets.delete(socket));
      });
      if (tls) {
        server.on('secureConnection', (socket: Socket) => {
          requestSockets.add(socket);
          socket.once('close', () => requestSockets.delete(socket));
        });
      }
    },
    busy(req, res, onIdle) {
      const socket = req.socket as Tracked;
      socket[active] = (socket[active] ?? 0) + 1;
      responses.add(res);
      res.once('close', () => {
        responses.delete(res);
        socket[active] = (socket[active] ?? 1) - 1;
        onIdle();
      });
    },
    responses,
    get open() {
      return raw.size;
    },
    closeIdle() {
      for (const socket of requestSockets) {
        if (!isIdle(socket)) continue;
        // Bytes may still wait in the kernel's buffer for a slow reader:
        // destroySoon() sends a FIN after them, then closes.
        socket.destroySoon();
      }
    },
    closeAll() {
      for (const socket of requestSockets) socket.destroy();
      for (const socket of raw) socket.destroy();
    },
  };
}
