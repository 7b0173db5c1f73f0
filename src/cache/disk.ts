/**
 * @module cache/disk
 * The disk tier: the on-disk layout, the object file format, the fill lock
 * that makes one process (of any number sharing the directory) fetch a cold
 * object, the startup index, LRU eviction under `cache.diskMaxBytes`, and
 * purge/list for the `cache` CLI.
 * Must not: know HTTP or the upstream (cache/fill.ts decides what is stored),
 * or keep object bodies in memory.
 *
 * Layout (prior art: nginx proxy_cache `levels=1:2` + temp path on the same
 * file system + rename on completion; cacache's tmp/ + move after check):
 *
 *   <dir>/v1/data/<h0h1>/<h>      committed objects; h = sha256(cache key), hex
 *   <dir>/v1/fill/<h>.lock        fill lock: JSON {pid, host, id, key}; mtime = heartbeat
 *   <dir>/v1/fill/<h>.<id>.spool  the object being filled (same format), renamed to data/ on commit
 *
 * Object file: a 24-byte fixed header, a JSON head, then the body:
 *   0 "GPRC" | 4 u32 format version | 8 u8 state (0 no head, 1 filling,
 *   2 complete, 3 failed) | 12 u32 head length | 16 f64 body length (when
 *   complete) | 24 head JSON | body.
 * A committed file is state 2 and its size is 24 + head + body length, which
 * the startup index checks along with magic, version and that the key hashes
 * to the file name; anything else is deleted.
 *
 * Locking across processes: the filler creates its spool file (unique id in
 * the name), then publishes the lock by link(2) of a fully written temp file
 * to `<h>.lock`: link fails with EEXIST if another process holds it, and the
 * lock is never seen half-written. The holder touches the lock's mtime every
 * HEARTBEAT_MS. A lock is dead when its pid is gone (same host) or its mtime
 * is older than LEASE_MS; a process that finds a dead lock renames it aside,
 * re-reads it, and deletes it only if it is still the dead one (else links it
 * back): the narrow race left costs at most a second backend request, never
 * a corrupt object, because every commit is a rename of a complete file.
 * Joiners in other processes open the holder's spool file and tail it
 * (polling its size and state every POLL_MS) at their own pace.
 *
 * fsync policy: the filler fdatasync()s the spool before the rename that
 * commits it, so a power loss cannot leave a committed name over unwritten
 * blocks; the directory is not fsynced (a rename lost in a crash only loses a
 * cache entry, which is fetched again). The sync delays only the commit (new
 * requests meanwhile join the fill), never the readers, who stream from the
 * spool. Spools are never synced: a crash discards them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
// Synchronous metadata calls of the fill lock (tryLock): see there.
import { existsSync, linkSync, unlinkSync, writeFileSync } from 'node:fs';

export const FORMAT_VERSION = 1;
const MAGIC = 'GPRC';
export const FIXED_BYTES = 24;
/** How often a fill lock's mtime is refreshed. */
export const HEARTBEAT_MS = 2_000;
/** A lock not refreshed for this long is dead, whatever its pid. */
export const LEASE_MS = 10_000;
/** How often a reader in another process looks at a growing spool. */
export const POLL_MS = 15;
/** Longest head we read back. */
const MAX_HEAD_BYTES = 64 * 1024;

export const enum SpoolState {
  NoHead = 0,
  Filling = 1,
  Complete = 2,
  Failed = 3,
}

/** What is stored with an object and replayed with it. */
export interface ObjectHead {
  key: string;
  status: number;
  contentType: string;
  contentEncoding?: string;
  etag: string;
  lastModified?: string;
  cacheControl: string;
  /** Body length when known before the body (Content-Length). */
  contentLength?: number;
  /** The answer will be committed (MISS) or only passed through (BYPASS). */
  store: boolean;
}

/** A committed object opened for reading: close `file` when done. */
export interface DiskObject {
  head: ObjectHead;
  file: FileHandle;
  bodyOffset: number;
  bodyLength: number;
}

/**
 * A committed object held open by the tier's open-file cache (nginx's
 * open_file_cache): read it (positional reads on `file`), then `release()`
 * exactly once. The descriptor is closed when the cache dropped the object
 * and its last lease is released, never under a read in flight.
 */
export interface ObjectLease extends DiskObject {
  /** Served from the open-file cache: read recently, so most likely in the page cache. */
  readonly hot: boolean;
  release(): void;
}

/** Bounds of the open-file cache (see {@link DiskTier.acquire}). */
export interface OpenFilesOptions {
  /** Most committed objects kept open (default 128). */
  maxEntries: number;
  /** Most object bytes (file sizes) kept open; a larger object is opened per request (default 256 MiB). */
  maxBytes: number;
}

/** Defaults of {@link OpenFilesOptions}. */
export const OPEN_FILES_DEFAULTS: OpenFilesOptions = { maxEntries: 128, maxBytes: 256 * 1024 * 1024 };
/**
 * How often the open-file cache checks its objects' names still lead to
 * their inodes (another process's purge or eviction), in ms: an unlinked
 * file held open keeps its blocks until it is closed.
 */
export const OPEN_FILES_SWEEP_MS = 10_000;

/** One open-file cache entry. */
interface OpenObject {
  readonly hash: string;
  readonly path: string;
  readonly object: DiskObject;
  readonly ino: number;
  readonly dev: number;
  /** File size, header included. */
  readonly fileBytes: number;
  refs: number;
  dropped: boolean;
}

/** One indexed object. */
export interface IndexEntry {
  key: string;
  bytes: number;
  usedMs: number;
}

/** The fill lock this process holds for a key. */
export interface FillLock {
  readonly key: string;
  readonly hash: string;
  readonly id: string;
  readonly spoolPath: string;
  /** The spool file, open read/write. */
  readonly file: FileHandle;
}

/** Who holds a fill lock. */
export interface LockHolder {
  pid: number;
  host: string;
  id: string;
  key: string;
}

export type LockResult = { kind: 'won'; lock: FillLock } | { kind: 'busy'; holder: LockHolder; spoolPath: string } | { kind: 'committed' };

export interface DiskTierOptions {
  dir: string;
  /** Upper bound of committed object bytes (files, headers included). */
  maxBytes: number;
  /** Clock in ms. */
  now?: () => number;
  /** Bounds of the open-file cache (default {@link OPEN_FILES_DEFAULTS}). */
  openFiles?: Partial<OpenFilesOptions>;
}

export interface IndexReport {
  objects: number;
  bytes: number;
  removedInvalid: number;
  removedTemp: number;
  durationMs: number;
}

export function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Encodes the fixed header and head JSON. */
export function encodeHeader(head: ObjectHead, state: SpoolState, bodyLength = 0): Buffer {
  const json = Buffer.from(JSON.stringify(head));
  const buf = Buffer.alloc(FIXED_BYTES + json.length);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(FORMAT_VERSION, 4);
  buf.writeUInt8(state, 8);
  buf.writeUInt32LE(json.length, 12);
  buf.writeDoubleLE(bodyLength, 16);
  json.copy(buf, FIXED_BYTES);
  return buf;
}

/** The fixed part: state and body length at a commit. */
export function encodeFixed(headLength: number, state: SpoolState, bodyLength: number): Buffer {
  const buf = Buffer.alloc(FIXED_BYTES);
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(FORMAT_VERSION, 4);
  buf.writeUInt8(state, 8);
  buf.writeUInt32LE(headLength, 12);
  buf.writeDoubleLE(bodyLength, 16);
  return buf;
}

interface Fixed {
  state: SpoolState;
  headLength: number;
  bodyLength: number;
}

function decodeFixed(buf: Buffer): Fixed | string {
  if (buf.length < FIXED_BYTES) return 'short header';
  if (buf.toString('latin1', 0, 4) !== MAGIC) return 'bad magic';
  const version = buf.readUInt32LE(4);
  if (version !== FORMAT_VERSION) return `format version ${version}, want ${FORMAT_VERSION}`;
  const headLength = buf.readUInt32LE(12);
  if (headLength > MAX_HEAD_BYTES) return 'head too long';
  return { state: buf.readUInt8(8) as SpoolState, headLength, bodyLength: buf.readDoubleLE(16) };
}

/** Reads and checks a file's header; a string says what is wrong. */
async function readHeader(file: FileHandle): Promise<{ fixed: Fixed; head: ObjectHead } | string> {
  const buf = Buffer.alloc(4096);
  const { bytesRead } = await file.read(buf, 0, buf.length, 0);
  const fixed = decodeFixed(buf.subarray(0, bytesRead));
  if (typeof fixed === 'string') return fixed;
  let headBuf = buf.subarray(FIXED_BYTES, FIXED_BYTES + fixed.headLength);
  if (FIXED_BYTES + fixed.headLength > bytesRead) {
    headBuf = Buffer.alloc(fixed.headLength);
    const r = await file.read(headBuf, 0, fixed.headLength, FIXED_BYTES);
    if (r.bytesRead !== fixed.headLength) return 'short head';
  }
  try {
    const head = JSON.parse(headBuf.toString('utf8')) as ObjectHead;
    if (typeof head.key !== 'string' || typeof head.status !== 'number') return 'bad head';
    return { fixed, head };
  } catch {
    return 'head is not JSON';
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

async function unlinkQuiet(path: string): Promise<void> {
  await fs.unlink(path).catch(() => {});
}

function unlinkQuietSync(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/**
 * Takes a fill lock: writes the holder to `tmp` and hard-links it to
 * `lockPath` (atomic: a reader never sees a half-written lock), then drops
 * `tmp`. True when taken; throws EEXIST when another holder has it.
 */
function linkLock(tmp: string, lockPath: string, holder: string): true {
  try {
    writeFileSync(tmp, holder);
    linkSync(tmp, lockPath);
    return true;
  } finally {
    unlinkQuietSync(tmp);
  }
}

/** True when `pid` is a live process on this host. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const HOST = hostname();

export class DiskTier {
  readonly dir: string;
  readonly root: string;
  #maxBytes: number;
  readonly #now: () => number;
  /** Committed objects this process knows of, least recently used first. */
  readonly #index = new Map<string, IndexEntry>();
  #bytes = 0;
  readonly #heartbeats = new Map<string, NodeJS.Timeout>();
  /** The open-file cache: committed objects kept open, least recently used first. */
  readonly #open = new Map<string, OpenObject>();
  /** Key -> hash of the objects in #open. */
  readonly #openKeys = new Map<string, string>();
  #openBytes = 0;
  readonly #openLimits: OpenFilesOptions;
  #sweep: NodeJS.Timeout | undefined;
  /** Resolves when the startup index is complete. */
  indexed: Promise<IndexReport> = Promise.resolve({ objects: 0, bytes: 0, removedInvalid: 0, removedTemp: 0, durationMs: 0 });

  constructor(opts: DiskTierOptions) {
    this.dir = opts.dir;
    this.root = join(opts.dir, `v${FORMAT_VERSION}`);
    this.#maxBytes = opts.maxBytes;
    this.#now = opts.now ?? Date.now;
    this.#openLimits = { ...OPEN_FILES_DEFAULTS, ...opts.openFiles };
  }

  dataPath(hash: string): string {
    return join(this.root, 'data', hash.slice(0, 2), hash);
  }
  lockPath(hash: string): string {
    return join(this.root, 'fill', `${hash}.lock`);
  }
  spoolPath(hash: string, id: string): string {
    return join(this.root, 'fill', `${hash}.${id}.spool`);
  }

  /** Creates the directories; starts the index in the background (see `indexed`). */
  async init(): Promise<void> {
    await fs.mkdir(join(this.root, 'data'), { recursive: true });
    await fs.mkdir(join(this.root, 'fill'), { recursive: true });
    this.indexed = this.#buildIndex();
    this.indexed.catch(() => {});
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }
  /** Committed bytes this process knows of. */
  get sizeBytes(): number {
    return this.#bytes;
  }
  get entries(): number {
    return this.#index.size;
  }

  resize(maxBytes: number): void {
    this.#maxBytes = maxBytes;
    void this.#evict();
  }

  /** Opens the committed object for `key`, or undefined. A file that fails its checks is deleted. */
  async open(key: string): Promise<DiskObject | undefined> {
    return (await this.#openChecked(key, keyHash(key)))?.object;
  }

  async #openChecked(key: string, hash: string): Promise<{ object: DiskObject; stat: Stats } | undefined> {
    const path = this.dataPath(hash);
    let file: FileHandle;
    try {
      file = await fs.open(path, constants.O_RDONLY);
    } catch (err) {
      if (isNotFound(err)) this.#forget(hash);
      return undefined;
    }
    const [header, stat] = await Promise.all([readHeader(file), file.stat()]).catch(() => ['unreadable', undefined] as const);
    const problem = typeof header === 'string' ? header : checkCommitted(header.fixed, header.head, key, stat);
    if (problem || typeof header === 'string' || !stat) {
      await file.close();
      await unlinkQuiet(path);
      this.#forget(hash);
      return undefined;
    }
    this.#touch(hash, key, stat.size);
    return { object: { head: header.head, file, bodyOffset: FIXED_BYTES + header.fixed.headLength, bodyLength: header.fixed.bodyLength }, stat };
  }

  /**
   * The committed object for `key` through the open-file cache, or
   * undefined. A committed file never changes (a new commit is a new inode
   * renamed over the name), so its descriptor and parsed header are kept:
   * a hit costs one stat(2) of the name, which proves the name still leads
   * to the same inode. A purge, eviction or replacement by any process is
   * seen at the next request (the name is gone or leads elsewhere) and the
   * cached descriptor is dropped: a purged object is never served.
   */
  async acquire(key: string): Promise<ObjectLease | undefined> {
    // The open object's own hash: no SHA-256 of the key per hit.
    const hash = this.#openKeys.get(key) ?? keyHash(key);
    const cached = this.#open.get(hash);
    if (cached) {
      const now = statQuiet(cached.path);
      if (now && now.ino === cached.ino && now.dev === cached.dev) {
        this.#open.delete(hash);
        this.#open.set(hash, cached);
        this.#touch(hash, key, cached.fileBytes);
        return this.#lease(cached, true);
      }
      this.#dropOpen(hash);
      if (!now) {
        this.#forget(hash);
        return undefined;
      }
    }
    const opened = await this.#openChecked(key, hash);
    if (!opened) return undefined;
    const entry: OpenObject = { hash, path: this.dataPath(hash), object: opened.object, ino: opened.stat.ino, dev: opened.stat.dev, fileBytes: opened.stat.size, refs: 0, dropped: false };
    if (entry.fileBytes > this.#openLimits.maxBytes || this.#openLimits.maxEntries < 1) {
      entry.dropped = true; // too large to keep open: this lease closes it
      return this.#lease(entry, false);
    }
    // Two misses of one object raced: keep the newer descriptor.
    if (this.#open.has(hash)) this.#dropOpen(hash);
    this.#open.set(hash, entry);
    this.#openKeys.set(key, hash);
    this.#openBytes += entry.fileBytes;
    for (const [h] of this.#open) {
      if (this.#open.size <= this.#openLimits.maxEntries && this.#openBytes <= this.#openLimits.maxBytes) break;
      this.#dropOpen(h);
    }
    this.#sweep ??= setInterval(() => this.#sweepOpen(), OPEN_FILES_SWEEP_MS).unref();
    return this.#lease(entry, false);
  }

  /** Objects the open-file cache holds open now, and their file bytes. */
  get openFiles(): { entries: number; bytes: number } {
    return { entries: this.#open.size, bytes: this.#openBytes };
  }

  #lease(entry: OpenObject, hot: boolean): ObjectLease {
    entry.refs++;
    let released = false;
    return {
      ...entry.object,
      hot,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.refs === 0 && entry.dropped) void entry.object.file.close().catch(() => {});
      },
    };
  }

  /** Takes `hash` out of the open-file cache; its descriptor closes with its last lease. */
  #dropOpen(hash: string): void {
    const entry = this.#open.get(hash);
    if (!entry) return;
    this.#open.delete(hash);
    this.#openKeys.delete(entry.object.head.key);
    this.#openBytes -= entry.fileBytes;
    entry.dropped = true;
    if (entry.refs === 0) void entry.object.file.close().catch(() => {});
  }

  /** Drops the open objects whose name no longer leads to their inode (another process removed or replaced them). */
  #sweepOpen(): void {
    for (const [hash, entry] of this.#open) {
      const now = statQuiet(entry.path);
      if (!now || now.ino !== entry.ino || now.dev !== entry.dev) {
        this.#dropOpen(hash);
        if (!now) this.#forget(hash);
      }
    }
  }

  /**
   * Takes the fill lock for `key`: `won` (fill it: write the spool, then
   * commit() or abandon()), `busy` (another process fills it: tail its
   * spool), or `committed` (it appeared meanwhile: open() it).
   */
  async tryLock(key: string): Promise<LockResult> {
    const hash = keyHash(key);
    const lockPath = this.lockPath(hash);
    for (let attempt = 0; attempt < 5; attempt++) {
      const id = `${process.pid.toString(36)}-${randomBytes(6).toString('hex')}`;
      const spoolPath = this.spoolPath(hash, id);
      // The spool exists before the lock names it (another process that
      // finds the lock tails the spool). The lock itself is taken with
      // synchronous metadata calls (a few µs each on a local file system,
      // as nginx does them): every MISS with a disk tier waits for it before
      // its backend request, and the seven thread-pool round trips in a row
      // it took cost 0.55-0.73 ms on a busy machine, now 0.34-0.40 (issue 10, go-mod-download).
      const file = await fs.open(spoolPath, 'wx+');
      const holder: LockHolder = { pid: process.pid, host: HOST, id, key };
      let taken: 'won' | 'committed' | Error;
      try {
        taken = linkLock(`${lockPath}.${id}.t`, lockPath, JSON.stringify(holder)) && existsSync(this.dataPath(hash)) ? 'committed' : 'won';
      } catch (err) {
        taken = err as Error;
      }
      if (taken !== 'won') {
        await file.close();
        await unlinkQuiet(spoolPath);
        // Committed between our miss and the lock: nothing to fill.
        if (taken === 'committed') {
          unlinkQuietSync(lockPath);
          return { kind: 'committed' };
        }
        if ((taken as NodeJS.ErrnoException).code !== 'EEXIST') throw taken;
        const other = await this.#readLock(lockPath);
        if (other === 'gone') continue;
        if (other === 'dead' || !this.#alive(other.holder, other.stat)) {
          await this.#reap(hash, other === 'dead' ? undefined : other.holder.id);
          continue;
        }
        return { kind: 'busy', holder: other.holder, spoolPath: this.spoolPath(hash, other.holder.id) };
      }
      const beat = setInterval(() => {
        const t = new Date();
        fs.utimes(lockPath, t, t).catch(() => {});
      }, HEARTBEAT_MS);
      beat.unref();
      this.#heartbeats.set(id, beat);
      return { kind: 'won', lock: { key, hash, id, spoolPath, file } };
    }
    throw new Error(`cannot take the fill lock ${lockPath}`);
  }

  /** Whether the holder of a lock is still working; false means another process may take over. */
  holderAlive(holder: LockHolder): Promise<boolean> {
    return this.#readLock(this.lockPath(keyHash(holder.key))).then((l) => typeof l !== 'string' && l.holder.id === holder.id && this.#alive(l.holder, l.stat));
  }

  /**
   * Commits a complete spool: writes the final fixed header, syncs the data,
   * renames it into data/ and drops the lock. `file` stays open for readers
   * (the caller closes it).
   */
  async commit(lock: FillLock, headLength: number, bodyLength: number): Promise<void> {
    try {
      await lock.file.write(encodeFixed(headLength, SpoolState.Complete, bodyLength), 0, FIXED_BYTES, 0);
      await lock.file.datasync();
      const path = this.dataPath(lock.hash);
      await fs.mkdir(join(path, '..'), { recursive: true });
      await fs.rename(lock.spoolPath, path);
      this.#touch(lock.hash, lock.key, FIXED_BYTES + headLength + bodyLength);
    } finally {
      await this.#unlock(lock);
    }
    await this.#evict();
  }

  /** Marks a spool complete without committing it (a BYPASS answer), then removes it. */
  async discard(lock: FillLock, headLength: number, bodyLength: number, state: SpoolState = SpoolState.Complete): Promise<void> {
    await lock.file.write(encodeFixed(headLength, state, bodyLength), 0, FIXED_BYTES, 0).catch(() => {});
    await unlinkQuiet(lock.spoolPath);
    await this.#unlock(lock);
  }

  async #unlock(lock: FillLock): Promise<void> {
    clearInterval(this.#heartbeats.get(lock.id));
    this.#heartbeats.delete(lock.id);
    const lockPath = this.lockPath(lock.hash);
    const current = await this.#readLock(lockPath);
    if (typeof current !== 'string' && current.holder.id === lock.id) await unlinkQuiet(lockPath);
  }

  async #readLock(lockPath: string): Promise<{ holder: LockHolder; stat: Stats } | 'gone' | 'dead'> {
    try {
      const [text, stat] = await Promise.all([fs.readFile(lockPath, 'utf8'), fs.stat(lockPath)]);
      const holder = JSON.parse(text) as LockHolder;
      if (typeof holder.pid !== 'number' || typeof holder.id !== 'string') return 'dead';
      return { holder, stat };
    } catch (err) {
      return isNotFound(err) ? 'gone' : 'dead';
    }
  }

  #alive(holder: LockHolder, stat: Stats): boolean {
    if (this.#now() - stat.mtimeMs > LEASE_MS) return false;
    if (holder.host === HOST && !pidAlive(holder.pid)) return false;
    return true;
  }

  /** Removes a dead lock (and its spool), unless it changed hands meanwhile. */
  async #reap(hash: string, deadId: string | undefined): Promise<void> {
    const lockPath = this.lockPath(hash);
    const aside = `${lockPath}.reap.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await fs.rename(lockPath, aside);
    } catch {
      return; // someone else reaped it
    }
    const moved = await this.#readLock(aside);
    const movedId = typeof moved === 'string' ? undefined : moved.holder.id;
    if (movedId !== deadId && typeof moved !== 'string' && this.#alive(moved.holder, moved.stat)) {
      await fs.link(aside, lockPath).catch(() => {}); // a live lock taken by mistake: put it back
    } else if (movedId) {
      await unlinkQuiet(this.spoolPath(hash, movedId));
    }
    await unlinkQuiet(aside);
  }

  /** Deletes the committed objects whose key `match`es (a scan of the directory); returns them. */
  async purge(match: (key: string) => boolean): Promise<IndexEntry[]> {
    const removed: IndexEntry[] = [];
    // Another process (a worker purging first) may have unlinked them already: forget them here too.
    for (const [hash, entry] of this.#open) if (match(entry.object.head.key)) this.#forget(hash);
    for (const entry of await this.scan()) {
      if (!match(entry.key)) continue;
      const hash = keyHash(entry.key);
      await unlinkQuiet(this.dataPath(hash));
      this.#forget(hash);
      removed.push(entry);
    }
    return removed;
  }

  /** Every committed object in the directory (read from disk, so it includes other processes' commits). */
  async scan(): Promise<IndexEntry[]> {
    const out: IndexEntry[] = [];
    await this.#walk((_path, _hash, entry) => {
      if (typeof entry !== 'string') out.push(entry);
    });
    return out;
  }

  /**
   * Visits every file under data/ with the result of its check. Synchronous
   * system calls in batches of WALK_BATCH between event-loop turns: for
   * 100,000 small files this is several times faster than one thread-pool
   * round trip per call, and serving goes on between batches.
   */
  async #walk(visit: (path: string, hash: string, entry: IndexEntry | string) => Promise<void> | void): Promise<void> {
    const data = join(this.root, 'data');
    const buf = Buffer.alloc(4096);
    let n = 0;
    for (const d of readdirQuiet(data)) {
      for (const name of readdirQuiet(join(data, d))) {
        const path = join(data, d, name);
        await visit(path, name, checkSync(path, name, buf));
        if (++n % WALK_BATCH === 0) await new Promise((r) => setImmediate(r));
      }
    }
  }

  async #buildIndex(): Promise<IndexReport> {
    const started = performance.now();
    let removedInvalid = 0;
    let removedTemp = 0;
    const found: Array<[string, IndexEntry]> = [];
    await this.#walk(async (path, hash, entry) => {
      if (typeof entry === 'string') {
        if (entry === 'gone') return;
        removedInvalid++;
        await unlinkQuiet(path);
      } else found.push([hash, entry]);
    });
    found.sort((a, b) => a[1].usedMs - b[1].usedMs);
    for (const [hash, entry] of found) if (!this.#index.has(hash)) this.#set(hash, entry);
    // Temp leftovers: spools and locks of dead fillers, stray lock temp files.
    const fill = join(this.root, 'fill');
    for (const name of await fs.readdir(fill).catch(() => [] as string[])) {
      const path = join(fill, name);
      if (name.endsWith('.lock')) {
        const lock = await this.#readLock(path);
        if (lock === 'gone') continue;
        if (lock === 'dead' || !this.#alive(lock.holder, lock.stat)) {
          await this.#reap(name.slice(0, -'.lock'.length), lock === 'dead' ? undefined : lock.holder.id);
          removedTemp++;
        }
        continue;
      }
      const stat = await fs.stat(path).catch(() => undefined);
      if (!stat) continue;
      const m = /^([0-9a-f]{64})\.([^.]+)\.spool$/.exec(name);
      let live = false;
      if (m) {
        const lock = await this.#readLock(this.lockPath(m[1] as string));
        live = typeof lock !== 'string' && lock.holder.id === m[2] && this.#alive(lock.holder, lock.stat);
      }
      // A spool is created just before its lock: spare young ones.
      if (!live && this.#now() - stat.mtimeMs > LEASE_MS / 2) {
        await unlinkQuiet(path);
        removedTemp++;
      }
    }
    await this.#evict();
    return { objects: this.#index.size, bytes: this.#bytes, removedInvalid, removedTemp, durationMs: Math.round(performance.now() - started) };
  }

  #set(hash: string, entry: IndexEntry): void {
    const old = this.#index.get(hash);
    if (old) {
      this.#bytes -= old.bytes;
      this.#index.delete(hash);
    }
    this.#index.set(hash, entry);
    this.#bytes += entry.bytes;
  }

  #touch(hash: string, key: string, bytes: number): void {
    this.#set(hash, { key, bytes, usedMs: this.#now() });
  }

  #forget(hash: string): void {
    this.#dropOpen(hash);
    const old = this.#index.get(hash);
    if (!old) return;
    this.#bytes -= old.bytes;
    this.#index.delete(hash);
  }

  /** Deletes least recently used objects until the known total fits. */
  async #evict(): Promise<void> {
    for (const [hash] of this.#index) {
      if (this.#bytes <= this.#maxBytes) return;
      this.#forget(hash);
      await unlinkQuiet(this.dataPath(hash));
    }
  }

  /** Index entries, least recently used first. */
  list(): IndexEntry[] {
    return [...this.#index.values()];
  }

  close(): void {
    for (const t of this.#heartbeats.values()) clearInterval(t);
    this.#heartbeats.clear();
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    for (const [hash] of this.#open) this.#dropOpen(hash);
  }
}

/** stat(2) of a path, synchronously (a cached dentry: about a microsecond); undefined when it is gone or unreadable. */
function statQuiet(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** Files checked between event-loop turns by the index. */
const WALK_BATCH = 256;

function readdirQuiet(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

/** Checks one committed file with synchronous calls (see DiskTier's #walk). */
function checkSync(path: string, hash: string, buf: Buffer): IndexEntry | string {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY);
    const stat = fstatSync(fd);
    const bytesRead = readSync(fd, buf, 0, buf.length, 0);
    const fixed = decodeFixed(buf.subarray(0, bytesRead));
    if (typeof fixed === 'string') return fixed;
    let headBuf = buf.subarray(FIXED_BYTES, FIXED_BYTES + fixed.headLength);
    if (FIXED_BYTES + fixed.headLength > bytesRead) {
      headBuf = Buffer.alloc(fixed.headLength);
      if (readSync(fd, headBuf, 0, fixed.headLength, FIXED_BYTES) !== fixed.headLength) return 'short head';
    }
    let head: ObjectHead;
    try {
      head = JSON.parse(headBuf.toString('utf8')) as ObjectHead;
    } catch {
      return 'head is not JSON';
    }
    if (typeof head.key !== 'string') return 'bad head';
    const problem = checkCommitted(fixed, head, undefined, stat) ?? (keyHash(head.key) === hash ? undefined : 'key does not match the file name');
    return problem ?? { key: head.key, bytes: stat.size, usedMs: stat.mtimeMs };
  } catch (err) {
    return isNotFound(err) ? 'gone' : (err as Error).message;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function checkCommitted(fixed: Fixed, head: ObjectHead, key: string | undefined, stat: Stats | undefined): string | undefined {
  if (fixed.state !== SpoolState.Complete) return `state ${fixed.state}`;
  if (key !== undefined && head.key !== key) return 'key mismatch';
  if (!stat || stat.size !== FIXED_BYTES + fixed.headLength + fixed.bodyLength) return 'size does not match the header';
  return undefined;
}

/** What a reader of a growing body needs to know about the fill. */
export interface FillProgress {
  /** Body bytes on disk so far. */
  available(): number;
  /** Total body length once complete. */
  total(): number | undefined;
  /** Set when the fill broke off. */
  error(): Error | undefined;
  /** Calls `cb` once when any of the above may have changed. */
  wait(cb: () => void): void;
}

/**
 * A reader of a (possibly growing) object file at its own pace: positional
 * reads on `file`, waiting on `progress` at the end of what is written. It
 * ends at the total length, or errors when the fill breaks off (the caller
 * cuts the connection). Never blocks the filler.
 */
export class FileBodyReader extends Readable {
  readonly #file: FileHandle;
  readonly #offset: number;
  readonly #progress: FillProgress;
  readonly #onClose: () => void;
  #pos = 0;
  #reading = false;

  constructor(file: FileHandle, bodyOffset: number, progress: FillProgress, onClose: () => void) {
    super({ highWaterMark: 256 * 1024 });
    this.#file = file;
    this.#offset = bodyOffset;
    this.#progress = progress;
    this.#onClose = onClose;
  }

  override _read(size: number): void {
    if (this.#reading) return;
    const total = this.#progress.total();
    const available = total ?? this.#progress.available();
    if (this.#pos >= available) {
      if (total !== undefined) return void this.push(null);
      const err = this.#progress.error();
      if (err) return void this.destroy(err);
      this.#reading = true;
      this.#progress.wait(() => {
        this.#reading = false;
        if (!this.destroyed) this._read(size);
      });
      return;
    }
    this.#reading = true;
    const n = Math.min(Math.max(size, 64 * 1024), available - this.#pos, 256 * 1024);
    const buf = Buffer.allocUnsafe(n);
    this.#file.read(buf, 0, n, this.#offset + this.#pos).then(
      ({ bytesRead }) => {
        this.#reading = false;
        if (this.destroyed) return;
        if (bytesRead === 0) return void this.destroy(new Error('object file shorter than its header says'));
        this.#pos += bytesRead;
        if (this.push(bytesRead === n ? buf : buf.subarray(0, bytesRead))) this._read(size);
      },
      (err: Error) => {
        this.#reading = false;
        this.destroy(err);
      },
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#onClose();
    cb(err);
  }
}

/** A complete object's progress: everything is there. */
export function completeProgress(bodyLength: number): FillProgress {
  return { available: () => bodyLength, total: () => bodyLength, error: () => undefined, wait: (cb) => setImmediate(cb) };
}

/**
 * Follows another process's spool: polls its size and fixed header every
 * POLL_MS, and its lock's liveness every second. Resolves with the head once
 * the filler wrote it; rejects when the fill failed or its filler died first.
 */
export async function tailSpool(
  tier: DiskTier,
  spoolPath: string,
  holder: LockHolder,
): Promise<{ head: ObjectHead; file: FileHandle; bodyOffset: number; progress: FillProgress & { stop(): void } }> {
  const file = await fs.open(spoolPath, constants.O_RDONLY);
  let fixed: Fixed | undefined;
  let size = 0;
  let failure: Error | undefined;
  let lastLiveness = Date.now();
  let checkingLiveness = false;
  const waiters: Array<() => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const poll = async (): Promise<void> => {
    const buf = Buffer.alloc(FIXED_BYTES);
    const [{ bytesRead }, stat] = await Promise.all([file.read(buf, 0, FIXED_BYTES, 0), file.stat()]);
    size = stat.size;
    const f = bytesRead === FIXED_BYTES ? decodeFixed(buf) : undefined;
    if (f && typeof f !== 'string') fixed = f;
    if (fixed?.state === SpoolState.Failed) failure = new Error('the filling process gave up');
    if (fixed?.state !== SpoolState.Complete && !failure && !checkingLiveness && Date.now() - lastLiveness > 1000) {
      checkingLiveness = true;
      lastLiveness = Date.now();
      // Committed files keep their inode: a dead or vanished holder with an incomplete spool is a failure.
      const alive = await tier.holderAlive(holder);
      if (!alive) {
        const again = Buffer.alloc(FIXED_BYTES);
        await file.read(again, 0, FIXED_BYTES, 0);
        const f2 = decodeFixed(again);
        if (typeof f2 !== 'string') fixed = f2;
        if (fixed?.state !== SpoolState.Complete) failure = new Error('the filling process died or dropped the fill');
      }
      checkingLiveness = false;
    }
  };
  const tick = (): void => {
    timer = undefined;
    poll().then(
      () => {
        for (const w of waiters.splice(0)) w();
        if (waiters.length && !stopped) timer ??= setTimeout(tick, POLL_MS);
      },
      (err: Error) => {
        failure = err;
        for (const w of waiters.splice(0)) w();
      },
    );
  };

  // Wait for the head.
  const deadline = Date.now() + 60_000;
  for (;;) {
    await poll().catch((err: Error) => (failure = err));
    if (failure) break;
    if (fixed && fixed.state !== SpoolState.NoHead && size >= FIXED_BYTES + fixed.headLength) break;
    if (Date.now() > deadline) failure = new Error('no head from the filling process within 60 s');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const header = failure ? undefined : await readHeader(file);
  if (failure || !header || typeof header === 'string' || !fixed) {
    await file.close();
    throw failure ?? new Error(`unreadable spool: ${String(header)}`);
  }
  const bodyOffset = FIXED_BYTES + header.fixed.headLength;
  const progress = {
    available: () => Math.max(0, size - bodyOffset),
    total: () => (fixed?.state === SpoolState.Complete ? fixed.bodyLength : undefined),
    error: () => failure,
    wait: (cb: () => void) => {
      waiters.push(cb);
      timer ??= setTimeout(tick, POLL_MS);
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
  return { head: header.head, file, bodyOffset, progress };
}
