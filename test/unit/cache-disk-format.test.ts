// The disk tier's object file format and startup index: a committed object
// round-trips; files with a wrong version, state, size or name, and temp
// leftovers of dead fillers, are deleted at startup.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { DiskTier, encodeHeader, FIXED_BYTES, keyHash, SpoolState, type ObjectHead } from '../../src/cache/disk.js';
import { tempDir } from '../helpers/temp.js';

const head = (key: string): ObjectHead => ({ key, status: 200, contentType: 'application/zip', etag: '"e"', cacheControl: 'public', store: true });

async function put(tier: DiskTier, key: string, body: Buffer, mutate: (file: Buffer) => Buffer = (f) => f, name = keyHash(key)): Promise<string> {
  const path = tier.dataPath(name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, mutate(Buffer.concat([encodeHeader(head(key), SpoolState.Complete, body.length), body])));
  return path;
}

test('the startup index keeps valid objects and deletes invalid ones and temp leftovers', async () => {
  const dir = await tempDir('gpr-format-');
  const tier = new DiskTier({ dir, maxBytes: 1e9 });
  await tier.init();
  await tier.indexed;
  const body = Buffer.from('PK\x03\x04 zip body');
  await put(tier, 'zip a v1', body);
  await put(tier, 'zip b v1', body, (f) => f.subarray(0, f.length - 1)); // short
  await put(tier, 'zip c v1', body, (f) => (f.writeUInt32LE(99, 4), f)); // other format version
  await put(tier, 'zip d v1', body, (f) => (f.writeUInt8(SpoolState.Filling, 8), f)); // never completed
  await put(tier, 'zip e v1', body, (f) => f, keyHash('zip other v1')); // wrong name
  await put(tier, 'zip f v1', body, (f) => (f.write('XXXX', 0), f)); // bad magic
  // A dead filler's lock (pid 2^22+1 does not exist) and spool, and a stray spool.
  const fill = join(dir, 'v1', 'fill');
  const h = keyHash('zip g v1');
  await writeFile(join(fill, `${h}.lock`), JSON.stringify({ pid: 4194305, host: (await import('node:os')).hostname(), id: 'dead-1', key: 'zip g v1' }));
  await writeFile(join(fill, `${h}.dead-1.spool`), 'partial');

  const again = new DiskTier({ dir, maxBytes: 1e9 });
  await again.init();
  const report = await again.indexed;
  expect(report.objects).toBe(1);
  expect(report.removedInvalid).toBe(5);
  expect(report.removedTemp).toBeGreaterThanOrEqual(1);
  expect(await readdir(fill)).toEqual([]);
  const obj = await again.open('zip a v1');
  expect(obj?.bodyLength).toBe(body.length);
  expect(obj?.bodyOffset).toBeGreaterThan(FIXED_BYTES);
  const read = Buffer.alloc(body.length);
  await obj?.file.read(read, 0, body.length, obj.bodyOffset);
  await obj?.file.close();
  expect(read.equals(body)).toBe(true);
  expect(await again.open('zip b v1')).toBeUndefined();
});

test('a fill lock is exclusive; a second taker is told who holds it', async () => {
  const dir = await tempDir('gpr-lock-');
  const tier = new DiskTier({ dir, maxBytes: 1e9 });
  await tier.init();
  const first = await tier.tryLock('zip a v1');
  expect(first.kind).toBe('won');
  const second = await tier.tryLock('zip a v1');
  expect(second.kind).toBe('busy');
  if (first.kind !== 'won' || second.kind !== 'busy') return;
  expect(second.holder).toMatchObject({ pid: process.pid, id: first.lock.id });
  expect(second.spoolPath).toBe(first.lock.spoolPath);
  await tier.discard(first.lock, 0, 0);
  await first.lock.file.close();
  const third = await tier.tryLock('zip a v1');
  expect(third.kind).toBe('won');
  if (third.kind === 'won') {
    await tier.discard(third.lock, 0, 0);
    await third.lock.file.close();
  }
  tier.close();
});
