/**
 * @module systemd/listen-fds
 * Reads the socket-activation protocol of sd_listen_fds(3) from an environment
 * block: which file descriptors systemd (or systemd-socket-activate) passed us
 * and their names, and which proxy listener (https, http, admin) each one is.
 * Follows libsystemd's sd_listen_fds_with_names(): LISTEN_PID must be ours,
 * LISTEN_FDS counts fds from 3, LISTEN_FDNAMES holds one name per fd.
 * Must not: do I/O, touch `process` (env and pid are arguments), or unset the
 * variables (sockets.ts does that, see there).
 */
import { gprError } from '../errors.js';

/** First passed file descriptor (SD_LISTEN_FDS_START in sd-daemon.h). */
export const SD_LISTEN_FDS_START = 3;

/** The listeners the proxy knows, in the order it reports them. */
export const LISTEN_ROLES = ['https', 'http', 'admin'] as const;

/** One passed file descriptor and its FileDescriptorName= (or "unknown"). */
export interface ListenFd {
  readonly fd: number;
  readonly name: string;
}

// libsystemd rejects counts that would overflow `int` once 3 is added.
const MAX_FDS = 2 ** 31 - 1 - SD_LISTEN_FDS_START;

function decimal(value: string): number | null {
  return /^[0-9]+$/.test(value) ? Number(value) : null;
}

/**
 * Parses LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from `env`.
 *
 * @param env - an environment block (e.g. `process.env`); not modified.
 * @param pid - our process id: the variables are for us only when LISTEN_PID equals it.
 * @returns `null` when we were not socket-activated (LISTEN_PID or LISTEN_FDS
 *   unset, or LISTEN_PID names another process, e.g. inherited from a parent);
 *   otherwise the fds 3, 4, ... with their names. Without LISTEN_FDNAMES every
 *   name is "unknown", as in sd_listen_fds_with_names().
 * @throws GPR_ERR_LISTEN_FDS when a variable is malformed, LISTEN_FDS is 0, or
 *   LISTEN_FDNAMES has a different number of names than LISTEN_FDS (libsystemd
 *   answers EINVAL to all of these).
 */
export function parseListenFds(env: Record<string, string | undefined>, pid: number): { fds: ListenFd[] } | null {
  const listenPid = env.LISTEN_PID;
  if (listenPid === undefined) return null;
  const owner = decimal(listenPid);
  if (owner === null || owner < 1 || !Number.isSafeInteger(owner)) {
    throw gprError('GPR_ERR_LISTEN_FDS', [`LISTEN_PID must be a process id, got '${listenPid}'`]);
  }
  if (owner !== pid) return null;

  const listenFds = env.LISTEN_FDS;
  if (listenFds === undefined) return null;
  const count = decimal(listenFds);
  if (count === null || count < 1 || count > MAX_FDS) {
    throw gprError('GPR_ERR_LISTEN_FDS', [`LISTEN_FDS must be a positive integer, got '${listenFds}'`]);
  }

  const fdNames = env.LISTEN_FDNAMES;
  // Colon-separated, empty names kept (libsystemd splits with
  // EXTRACT_DONT_COALESCE_SEPARATORS).
  const names = fdNames === undefined ? new Array<string>(count).fill('unknown') : fdNames.split(':');
  if (names.length !== count) {
    throw gprError('GPR_ERR_LISTEN_FDS', [
      `LISTEN_FDNAMES has ${names.length} name(s) for ${count} fd(s): '${fdNames}'`,
    ]);
  }
  return { fds: names.map((name, i) => ({ fd: SD_LISTEN_FDS_START + i, name })) };
}

/**
 * Groups passed fds by listener role. A role may have several fds (one
 * socket unit with `ListenStream=0.0.0.0:80` and `ListenStream=[::]:80`, or
 * two units with the same FileDescriptorName=).
 *
 * @param fds - from {@link parseListenFds}.
 * @param knownRoles - the names the proxy accepts. Default {@link LISTEN_ROLES}.
 * @returns role -> fds, in fd order; roles without fds are absent.
 * @throws GPR_ERR_LISTEN_FDS naming the first fd whose name is not a known role.
 */
export function assignRoles(
  fds: readonly ListenFd[],
  knownRoles: readonly string[] = LISTEN_ROLES,
): Map<string, number[]> {
  const roles = new Map<string, number[]>();
  for (const { fd, name } of fds) {
    if (!knownRoles.includes(name)) {
      throw gprError('GPR_ERR_LISTEN_FDS', [
        `socket name '${name}' (fd ${fd}) is not one of ${knownRoles.join(', ')}: set FileDescriptorName= in the .socket unit`,
      ]);
    }
    const list = roles.get(name);
    if (list === undefined) roles.set(name, [fd]);
    else list.push(fd);
  }
  return roles;
}
