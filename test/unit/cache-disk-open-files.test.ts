// Issue 10: the disk tier's open-file cache (DiskTier.acquire). Committed
// objects stay open, bounded by count and bytes; a hit proves with stat(2)
// that the name still leads to the cached inode, so an object another
// process purged, evicted or replaced is never served from a cached
// descriptor; a descriptor closes only after its last lease.
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { DiskTier, encodeHeader, keyHash, SpoolState, type ObjectHead, type ObjectLease } from '../../src/cache/disk.js';
import { tempDir } from '../helpers/temp.js';

const head = (key: string): ObjectHead => ({ key, status: 200, contentType: 'application/zip', etag: `"${key}"`, cacheControl: 'public', store: true });

/** Commits `body` for `key` as another process would: a complete file renamed over the name. */
async function commit(tier: DiskTier, key: string, body: Buffer): Promise<string> {
  const path = tier.dataPath(keyHash(key));
  await mkdir(join(path, '..'), { recursive: true });
  const tmp = `${path}.${Math.random().toString(36).slice(2)}.t`;
  await writeFile(tmp, Buffer.concat([encodeHeader(head(key), SpoolState.Complete, body.length), body]));
  await rename(tmp, path);
  return path;
}

async function openTier(openFiles: { maxEntries?: number; maxBytes?: number } = {}): Promise<DiskTier> {
  const dir = await tempDir('gpr-openfiles-');
  const tier = new DiskTier({ dir, maxBytes: 1e9, openFiles });
  await tier.init();
  await tier.indexed;
  onTestFinished(() => tier.close());
  return tier;
}

function readAll(lease: ObjectLease): Promise<Buffer> {
  const buf = Buffer.alloc(lease.bodyLength);
  return lease.file.read(buf, 0, lease.bodyLength, lease.bodyOffset).then(() => buf);
}

/** Descriptors of this process open on files under `dir`. */
function fdsUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return n;
}

test('a hit reuses the cached descriptor; the cache stays within maxEntries and maxBytes', async () => {
  const tier = await openTier({ maxEntries: 3, maxBytes: 10_000 });
  const body = (i: number) => Buffer.alloc(1000, i);
  for (let i = 0; i < 6; i++) await commit(tier, `zip m v1.0.${i}`, body(i));
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 6; i++) {
      const lease = (await tier.acquire(`zip m v1.0.${i}`)) as ObjectLease;
      expect((await readAll(lease)).equals(body(i))).toBe(true);
      lease.release();
      expect(tier.openFiles.entries).toBeLessThanOrEqual(3);
    }
  }
  expect(tier.openFiles.entries).toBe(3);
  expect(fdsUnder(tier.root)).toBe(3);
  // The most recent object is served from its cached descriptor: same file handle.
  const a = (await tier.acquire('zip m v1.0.5')) as ObjectLease;
  const b = (await tier.acquire('zip m v1.0.5')) as ObjectLease;
  expect(a.file).toBe(b.file);
  expect([a.hot, b.hot]).toEqual([true, true]);
  a.release();
  b.release();

  // An object larger than maxBytes is opened per request and closed with its lease.
  await commit(tier, 'zip big v1', Buffer.alloc(20_000, 7));
  const big = (await tier.acquire('zip big v1')) as ObjectLease;
  expect(big.bodyLength).toBe(20_000);
  expect(tier.openFiles).toEqual({ entries: 3, bytes: expect.any(Number) as number });
  expect(tier.openFiles.bytes).toBeLessThanOrEqual(10_000);
  big.release();
  await new Promise((r) => setTimeout(r, 50));
  expect(fdsUnder(tier.root)).toBe(3);
  tier.close();
  await new Promise((r) => setTimeout(r, 50));
  expect(fdsUnder(tier.root)).toBe(0);
});

test('an object another process removed is not served from the cached descriptor, and the descriptor is closed', async () => {
  const tier = await openTier();
  const path = await commit(tier, 'zip m v1', Buffer.from('PK\x03\x04 first'));
  const lease = (await tier.acquire('zip m v1')) as ObjectLease;
  lease.release();
  expect(tier.openFiles.entries).toBe(1);
  await unlink(path); // `cache purge` on the directory, or another worker's eviction
  expect(await tier.acquire('zip m v1')).toBeUndefined();
  expect(tier.openFiles.entries).toBe(0);
  expect(tier.entries).toBe(0);
  await new Promise((r) => setTimeout(r, 50));
  expect(fdsUnder(tier.root)).toBe(0);
});

test('an object another process replaced (a new inode under the name) is served new', async () => {
  const tier = await openTier();
  await commit(tier, 'zip m v1', Buffer.from('PK\x03\x04 first'));
  const first = (await tier.acquire('zip m v1')) as ObjectLease;
  expect((await readAll(first)).toString()).toBe('PK\x03\x04 first');
  await commit(tier, 'zip m v1', Buffer.from('PK\x03\x04 second, longer'));
  const second = (await tier.acquire('zip m v1')) as ObjectLease;
  expect([first.hot, second.hot]).toEqual([false, false]); // each opened its own inode
  expect((await readAll(second)).toString()).toBe('PK\x03\x04 second, longer');
  // A read under way on the old lease still gets the old, whole object (its inode lives while open).
  expect((await readAll(first)).toString()).toBe('PK\x03\x04 first');
  first.release();
  second.release();
  expect(tier.openFiles.entries).toBe(1);
  await new Promise((r) => setTimeout(r, 50));
  expect(fdsUnder(tier.root)).toBe(1);
});

test('purge in this process drops the cached descriptor, even when another process unlinked the file first; a lease outlives the drop', async () => {
  const tier = await openTier();
  const other = new DiskTier({ dir: tier.dir, maxBytes: 1e9 });
  await other.init();
  onTestFinished(() => other.close());
  await commit(tier, 'zip m v1', Buffer.from('PK\x03\x04 m'));
  await commit(tier, 'zip n v1', Buffer.from('PK\x03\x04 n'));
  const held = (await tier.acquire('zip m v1')) as ObjectLease;
  (await tier.acquire('zip n v1'))?.release();
  expect(tier.openFiles.entries).toBe(2);
  // The supervisor purges worker by worker: the other one unlinks first.
  expect((await other.purge((k) => k.startsWith('zip m '))).map((e) => e.key)).toEqual(['zip m v1']);
  expect(await tier.purge((k) => k.startsWith('zip m '))).toEqual([]);
  expect(tier.openFiles.entries).toBe(1);
  expect((await readAll(held)).toString()).toBe('PK\x03\x04 m');
  held.release();
  await new Promise((r) => setTimeout(r, 50));
  expect(fdsUnder(tier.root)).toBe(1);
  expect(await tier.acquire('zip m v1')).toBeUndefined();
});

test('eviction under diskMaxBytes closes the evicted objects\' descriptors', async () => {
  const dir = await tempDir('gpr-openfiles-');
  const tier = new DiskTier({ dir, maxBytes: 1e9 });
  await tier.init();
  await tier.indexed;
  onTestFinished(() => tier.close());
  for (let i = 0; i < 4; i++) {
    await commit(tier, `zip m v1.0.${i}`, Buffer.alloc(1000, i));
    (await tier.acquire(`zip m v1.0.${i}`))?.release();
  }
  expect(tier.openFiles.entries).toBe(4);
  tier.resize(2500); // keeps the two most recently used
  await new Promise((r) => setTimeout(r, 50));
  expect(tier.openFiles.entries).toBe(2);
  expect(fdsUnder(tier.root)).toBe(2);
  expect(await tier.acquire('zip m v1.0.0')).toBeUndefined();
});
