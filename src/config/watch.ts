/**
 * @module config/watch
 * Owns noticing that the config file changed (`reload.watch`): an fs.watch
 * on the file's directory, plus a periodic read of the file as a fallback,
 * debounced, compared by content hash. It handles kubelet's ConfigMap update,
 * where `config.json` is a symlink to `..data/config.json`, `..data` a
 * symlink to a timestamped directory, and an update renames a new `..data`
 * symlink over the old one: the directory watch sees the rename, the content
 * hash sees through both symlinks, and the poll catches whatever inotify
 * misses (a swap inside a directory that is itself a mount point, an
 * editor's write through a symlink).
 * Must not: parse or apply the config (the caller's `onChange` runs the
 * server's validated reload, which leaves the old config on any problem).
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Options of {@link watchConfigFile}. */
export interface WatchOptions {
  /** The config file as given on the command line (a symlink is followed on every read). */
  path: string;
  /** Called once per change of the file's content (or of its readability), never while a previous call runs. */
  onChange: () => Promise<unknown>;
  /** Quiet time after the last event before the file is read, in ms (reload.debounceMs). */
  debounceMs: number;
  /** The fallback check interval, in ms (reload.pollMs). */
  pollMs: number;
  /**
   * Other files whose content counts as the config's (the certificate files
   * it names): read with the config file on every check, so a change to one
   * (a Secret's ..data swap) reloads too. Asked anew each time.
   */
  alsoWatch?: () => readonly string[];
  /** Told when the directory cannot be watched (only the poll is left). */
  onWatchError?: (err: Error) => void;
}

/** Stops watching; an `onChange` under way finishes on its own. */
export type StopWatching = () => void;

/** What the files hold now: a hash of their contents, or of each read error's code. */
async function fingerprint(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const path of paths) {
    try {
      hash.update(createHash('sha256').update(await readFile(path)).digest('hex'));
    } catch (err) {
      hash.update(`error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`);
    }
    hash.update('\0');
  }
  return hash.digest('hex');
}

/**
 * Starts watching `opts.path` (and `opts.alsoWatch`'s files, on the poll and
 * on the config directory's events); the content at the time of the call is the
 * baseline. Every fs event in the directory (re)starts a `debounceMs` timer;
 * every `pollMs` the file is read anyway. When the hash differs from the last
 * one acted on, `onChange` runs. A file that is missing or unreadable counts
 * as a change too, so its failed reload is logged and counted; the next good
 * content is another change.
 */
export function watchConfigFile(opts: WatchOptions): StopWatching {
  let stopped = false;
  const paths = (): string[] => [opts.path, ...(opts.alsoWatch?.() ?? [])];
  let last: Promise<string> = fingerprint(paths());
  let debounce: NodeJS.Timeout | undefined;
  let checking: Promise<void> | undefined;
  let checkAgain = false;

  async function check(): Promise<void> {
    const before = await last;
    const now = await fingerprint(paths());
    if (stopped || now === before) return;
    last = Promise.resolve(now);
    await opts.onChange();
  }

  /** One check at a time; a request during one runs one more after it. */
  function runCheck(): void {
    if (stopped) return;
    if (checking) {
      checkAgain = true;
      return;
    }
    checking = (async () => {
      do {
        checkAgain = false;
        await check().catch(() => undefined);
      } while (checkAgain && !stopped);
      checking = undefined;
    })();
  }

  function schedule(): void {
    clearTimeout(debounce);
    debounce = setTimeout(runCheck, opts.debounceMs);
  }

  let watcher: FSWatcher | undefined;
  try {
    // The directory, not the file: a watch on the file (or on the symlink's
    // target) would follow the old inode after a rename or a `..data` swap.
    watcher = watch(dirname(opts.path), { persistent: false }, schedule);
    watcher.on('error', (err) => {
      opts.onWatchError?.(err);
      watcher?.close();
    });
  } catch (err) {
    opts.onWatchError?.(err as Error);
  }
  const poll = setInterval(runCheck, opts.pollMs);
  poll.unref();

  return function stopWatching() {
    stopped = true;
    clearTimeout(debounce);
    clearInterval(poll);
    watcher?.close();
  };
}
