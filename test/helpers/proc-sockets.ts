// Test helper (Linux): which TCP sockets a process holds in LISTEN state,
// from /proc/PID/fd (socket inodes) and /proc/PID/net/tcp{,6} (state and
// local address per inode). Lets a test prove what a process did NOT bind.
// Must not: be used for anything but observation.
import { readdir, readFile, readlink } from 'node:fs/promises';

/** A listening TCP socket of a process: the fd it holds it on and the local port. */
export interface HeldListener {
  fd: number;
  port: number;
}

const TCP_LISTEN = '0A';

/** The listening TCP sockets `pid` holds, by fd. */
export async function listeningSockets(pid: number): Promise<HeldListener[]> {
  const portByInode = new Map<string, number>();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readFile(`/proc/${pid}/net/${table}`, 'utf8');
    for (const row of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const cols = row.trim().split(/\s+/);
      if (cols.length < 10 || cols[3] !== TCP_LISTEN) continue;
      const local = cols[1]!;
      portByInode.set(cols[9]!, parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  const held: HeldListener[] = [];
  for (const name of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${name}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    const port = inode === undefined ? undefined : portByInode.get(inode);
    if (port !== undefined) held.push({ fd: Number(name), port });
  }
  return held.sort((a, b) => a.fd - b.fd);
}
