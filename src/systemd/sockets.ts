/**
 * @module systemd/sockets
 * Decides where each listener (https, http, admin) listens: on the sockets
 * systemd passed (socket activation), or on the addresses from the config;
 * and starts a server listening there.
 * Must not: create servers, read the config file, or bind a config address
 * for a role systemd did not pass when socket-activated (systemd owns the
 * sockets then; binding a second one beside them would surprise the admin).
 */
import net from 'node:net';
import { gprError } from '../errors.js';
import { LISTEN_ROLES, assignRoles, parseListenFds, type ListenFd } from './listen-fds.js';

/** A proxy listener. */
export type ListenRole = (typeof LISTEN_ROLES)[number];

/** Config addresses per role; `null` or absent disables the role. */
export interface ListenConfig {
  readonly http?: string | null;
  readonly https?: string | null;
  readonly admin?: string | null;
}

/** A socket passed by systemd, to adopt. */
export interface FdTarget {
  readonly role: ListenRole;
  readonly fd: number;
}

/** An address from the config, to bind. `host` "" means every address (`:port`). */
export interface AddressTarget {
  readonly role: ListenRole;
  readonly host: string;
  readonly port: number;
}

/** Where one listener listens. */
export type ListenTarget = FdTarget | AddressTarget;

/**
 * Listen backlog (pending connections), in connections. Node calls listen(2)
 * again on an adopted fd with its default of 511, which would shrink the
 * `Backlog=4096` of our .socket units; passing this keeps them equal. The
 * kernel caps it at net.core.somaxconn (4096 since Linux 5.4).
 */
export const LISTEN_BACKLOG = 4096;

const ACTIVATION_VARS = ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function listenError(address: string, role: ListenRole, reason: string): Error {
  return gprError('GPR_ERR_LISTEN', [`'${address}'`, role, reason]);
}

/**
 * Parses a config address: `host:port`, `[ipv6]:port` or `:port` (every
 * address). Port 0 asks the kernel for a free port (tests).
 * @throws GPR_ERR_LISTEN naming the address, the role and what is wrong.
 */
export function parseListenAddress(address: string, role: ListenRole): AddressTarget {
  const bad = (reason: string) => listenError(address, role, reason);
  if (address.includes('://')) throw bad('expected host:port, not a URL');
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw bad('expected host:port, [ipv6]:port or :port; the port is missing');
  const hostPart = address.slice(0, colon);
  const portPart = address.slice(colon + 1);

  if (!/^[0-9]{1,5}$/.test(portPart) || Number(portPart) > 65535) {
    throw bad(`port must be an integer from 0 to 65535, got '${portPart}'`);
  }
  const port = Number(portPart);

  let host: string;
  if (hostPart.startsWith('[')) {
    if (!hostPart.endsWith(']')) throw bad('an IPv6 address in brackets is missing its closing ]');
    host = hostPart.slice(1, -1);
    if (!net.isIPv6(host)) throw bad(`'${host}' is not an IPv6 address`);
  } else if (hostPart.includes(':')) {
    throw bad('an IPv6 address needs brackets, e.g. [::1]:8080');
  } else if (hostPart === '') {
    host = '';
  } else if (/^[0-9.]+$/.test(hostPart)) {
    if (!net.isIPv4(hostPart)) throw bad(`'${hostPart}' is not an IPv4 address`);
    host = hostPart;
  } else {
    if (!HOSTNAME.test(hostPart)) throw bad(`'${hostPart}' is not a host name or IP address`);
    host = hostPart;
  }
  return { role, host, port };
}

/**
 * Lists where the listeners listen.
 *
 * Socket-activated (LISTEN_PID is `pid`): one {@link FdTarget} per passed fd,
 * in fd order, role from its FileDescriptorName=; several fds per role are
 * fine (IPv4 and IPv6). Roles systemd did not pass are absent even when the
 * config has an address for them: compare with `listen` to log them.
 * Otherwise: one {@link AddressTarget} per non-null config address, in the
 * order https, http, admin.
 *
 * Either way it then deletes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from
 * `env`, like sd_listen_fds(unset_environment=1), so no child inherits them.
 *
 * @param listen - config addresses; ignored when socket-activated.
 * @param env - the environment to read and clean (usually `process.env`).
 * @param pid - our process id (usually `process.pid`).
 * @throws GPR_ERR_LISTEN_FDS for malformed activation variables or an unknown
 *   socket name; GPR_ERR_LISTEN for a malformed config address.
 */
export function listenTargets(listen: ListenConfig, env: NodeJS.ProcessEnv, pid: number): ListenTarget[] {
  let activated: { fds: ListenFd[] } | null;
  try {
    activated = parseListenFds(env, pid);
  } finally {
    for (const name of ACTIVATION_VARS) delete env[name];
  }

  if (activated !== null) {
    // Throws for a name that is not a role; so every name below is a ListenRole.
    assignRoles(activated.fds, LISTEN_ROLES);
    return activated.fds.map(({ fd, name }) => ({ role: name as ListenRole, fd }));
  }

  const targets: AddressTarget[] = [];
  for (const role of LISTEN_ROLES) {
    const address = listen[role];
    if (address === null || address === undefined) continue;
    targets.push(parseListenAddress(address, role));
  }
  return targets;
}

/** Formats a target for messages: `fd 3`, `127.0.0.1:80`, `[::1]:443`, `:8080`. */
export function describeTarget(target: ListenTarget): string {
  if ('fd' in target) return `fd ${target.fd}`;
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${host}:${target.port}`;
}

/**
 * Starts `server` listening on `target`: adopts the fd, or binds host:port.
 *
 * @param backlog - pending-connection queue length. Default {@link LISTEN_BACKLOG}.
 * @returns resolves on 'listening'.
 * @throws (rejects) GPR_ERR_LISTEN naming the fd or address, the role and the
 *   system error (EADDRINUSE, EACCES, EBADF, ...); the system error is the cause.
 */
export function listenOn(server: net.Server, target: ListenTarget, backlog: number = LISTEN_BACKLOG): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(gprError('GPR_ERR_LISTEN', [describeTarget(target), target.role, err.message], err));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      if ('fd' in target) server.listen({ fd: target.fd, backlog });
      // host "" is falsy: Node then listens on every address (:: or 0.0.0.0).
      else server.listen({ host: target.host, port: target.port, backlog });
    } catch (err) {
      // listen() throws synchronously for bad arguments (ERR_SOCKET_BAD_PORT, ...).
      onError(err instanceof Error ? err : new Error(String(err)));
      server.off('error', onError);
    }
  });
}
