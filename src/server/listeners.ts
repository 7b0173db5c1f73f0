/**
 * @module server/listeners
 * Opens one listener per ListenTarget (a systemd fd, a config address, or
 * whatever a primary process hands over): the caller makes the server for a
 * role, this module starts it listening, announces it and builds its URL.
 * Must not: decide where to listen (systemd/sockets.ts) or how a role's
 * server behaves (server/role-servers.ts).
 */
import type { AddressInfo, Server } from 'node:net';
import { announce, lifecycle, type Logger } from '../log.js';
import { listenOn, type ListenRole, type ListenTarget } from '../systemd/sockets.js';

export interface Listener {
  role: ListenRole;
  server: Server;
  address: AddressInfo | string;
}

/**
 * Makes a server per target with `create` and starts it listening there, in
 * order; on a failure closes the ones already open and throws.
 */
export async function openListeners(targets: readonly ListenTarget[], create: (role: ListenRole) => Server, log: Logger): Promise<Listener[]> {
  const listeners: Listener[] = [];
  try {
    for (const target of targets) {
      const server = create(target.role);
      await listenOn(server, target);
      const address = server.address() as AddressInfo | string;
      listeners.push({ role: target.role, server, address });
      announce(log, 'info', { role: target.role, address: typeof address === 'string' ? address : `${address.address}:${address.port}`, fd: 'fd' in target ? target.fd : undefined }, lifecycle.listening);
    }
  } catch (err) {
    for (const l of listeners) l.server.close();
    throw err;
  }
  return listeners;
}

/** "http://127.0.0.1:PORT" (or https://, or unix:PATH) of the first listener of `role`. */
export function listenerUrl(listeners: readonly Listener[], role: ListenRole): string {
  const l = listeners.find((x) => x.role === role);
  if (!l) throw new Error(`no ${role} listener`);
  if (typeof l.address === 'string') return `unix:${l.address}`;
  const host = l.address.family === 'IPv6' ? `[${l.address.address}]` : l.address.address;
  return `${role === 'https' ? 'https' : 'http'}://${host}:${l.address.port}`;
}
