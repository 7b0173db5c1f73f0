/**
 * @module server/signals
 * Process signals: SIGHUP reloads; SIGTERM or SIGINT drains, then exits 0
 * (1 if the drain failed); a second SIGTERM/SIGINT exits 1 at once.
 * Must not: do the reload or the drain itself.
 */
import type { Logger } from '../log.js';

export interface SignalDeps {
  reload: () => Promise<unknown>;
  close: () => Promise<void>;
  exit: (code: number) => void;
  log: Logger;
}

export function handleSignals(deps: SignalDeps): void {
  process.on('SIGHUP', () => void deps.reload());
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      deps.log.warn({ signal }, 'second signal: exiting at once');
      deps.log.flush();
      return deps.exit(1);
    }
    stopping = true;
    deps.close().then(
      () => deps.exit(0),
      () => deps.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
