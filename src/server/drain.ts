/**
 * @module server/drain
 * Graceful stop: stop accepting, let every response finish SENDING (not just
 * be handed to end(): a slow reader's queued bytes count as work), give idle
 * keep-alive connections a short grace to send one more request, and after
 * shutdown.drainTimeoutMs cut what is left. The admin listener stays up until
 * the proxy listeners have drained, so /readyz answers 503 meanwhile.
 * Must not: exit the process (server/signals.ts does) or build runtimes.
 */
import type http from 'node:http';
import net from 'node:net';
import type { Cache } from '../cache/cache.js';
import { announce, lifecycle, type Logger } from '../log.js';
import type { RuntimeRef } from '../runtime.js';
import type { Notifier } from '../systemd/notify.js';
import type { Connections } from './connections.js';

/** While draining, how long an idle keep-alive connection may still send a request, in ms. */
export const IDLE_GRACE_MS = 1000;

export interface DrainDeps {
  proxyServers: http.Server[];
  adminServers: http.Server[];
  connections: Connections;
  runtime: RuntimeRef;
  log: Logger;
  notifier: Notifier;
  /** Closed last; a fill whose readers are done may still be committing, and finishes first. */
  cache: Cache;
  /** The reload under way, if any: it finishes first (bounded by the drain timeout) so its READY=1 is not cut off by STOPPING=1. */
  pendingReload: () => Promise<unknown> | undefined;
  /** Called once the idle grace is over; from then on every response that closes closes the idle connections. */
  onGraceOver: () => void;
}

export async function drain(deps: DrainDeps): Promise<void> {
  const { runtime, log, notifier, connections } = deps;
  const timeoutMs = runtime.current.config.shutdown.drainTimeoutMs;
  const deadline = Date.now() + timeoutMs;
  const reload = deps.pendingReload();
  if (reload) await Promise.race([reload, sleep(timeoutMs)]);
  notifier.stopping();
  notifier.stopWatchdog();
  announce(log, 'info', { inFlight: runtime.inFlight, connections: connections.open }, lifecycle.draining);
  // net.Server's close(), not http.Server's, which also closes the idle
  // keep-alive connections at once: a request already on its way on one
  // would be reset unread. They get IDLE_GRACE_MS to send one more,
  // answered with Connection: close; then the idle ones are closed.
  const closed = Promise.all(deps.proxyServers.map((s) => new Promise<void>((resolve) => net.Server.prototype.close.call(s, () => resolve()))));
  // A request that began before the drain got no `Connection: close` from the
  // handler; its keep-alive connection would idle after the answer.
  for (const res of connections.responses) if (!res.headersSent) res.setHeader('connection', 'close');
  const idleTimer = setTimeout(() => {
    deps.onGraceOver();
    connections.closeIdle();
  }, IDLE_GRACE_MS);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), Math.max(0, deadline - Date.now()));
    }),
  ]);
  clearTimeout(timer);
  clearTimeout(idleTimer);
  if (timedOut) {
    log.warn({ inFlight: runtime.inFlight, timeoutMs }, 'drain timed out: closing the remaining connections');
    connections.closeAll();
    for (const s of deps.proxyServers) s.closeAllConnections();
    await closed;
    // The server's 'close' comes before its sockets' (and so the cut
    // requests') 'close' events: let those log their 499 before the
    // backend clients close under them and turn them into 404s.
    const until = Date.now() + 1000;
    while (runtime.inFlight > 0 && Date.now() < until) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(
    deps.adminServers.map(
      (s) =>
        new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        }),
    ),
  );
  // A fill whose readers are done may still be committing: let it finish.
  await Promise.race([deps.cache.idle(), sleep(Math.max(0, deadline - Date.now()))]);
  runtime.closeAll();
  deps.cache.close();
  // Messages go out one at a time; exiting before the queue is empty would drop STOPPING=1.
  await notifier.close();
  log.info({}, lifecycle.stopped);
  await new Promise<void>((resolve) => log.flush(() => resolve()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
