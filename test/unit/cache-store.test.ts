// The byte-bounded store: bound kept, entry cap, freshness from the injected
// clock, resize keeping the most recently used entries.
import { expect, test } from 'vitest';
import { CacheStore, ENTRY_OVERHEAD_BYTES, type CachedObject } from '../../src/cache/store.js';

function object(bytes: number, expiresAtMs = Infinity): CachedObject {
  return { status: 200, contentType: 'application/zip', etag: '"x"', body: Buffer.alloc(bytes), expiresAtMs, cacheControl: 'public' };
}

test('stays at or under maxBytes while filling, evicting least recently used', () => {
  const store = new CacheStore({ maxBytes: 10_000, maxEntryBytes: 4_000 });
  for (let i = 0; i < 50; i++) {
    store.set(`k${i}`, object(1_000 + i * 50));
    expect(store.sizeBytes).toBeLessThanOrEqual(10_000);
  }
  expect(store.get('k49')).toBeDefined();
  expect(store.get('k0')).toBeUndefined();
});

test('bodies over maxEntryBytes are not stored', () => {
  const store = new CacheStore({ maxBytes: 100_000, maxEntryBytes: 1_000 });
  expect(store.set('big', object(1_001))).toBe(false);
  expect(store.set('ok', object(1_000))).toBe(true);
  expect(store.sizeBytes).toBe(1_000 + ENTRY_OVERHEAD_BYTES);
});

test('freshness follows the injected clock', () => {
  let now = 0;
  const store = new CacheStore({ maxBytes: 100_000, maxEntryBytes: 10_000, now: () => now });
  store.set('list', object(10, 60_000));
  expect(store.get('list')?.fresh).toBe(true);
  now = 60_000;
  expect(store.get('list')?.fresh).toBe(false);
  expect(store.get('list')?.object.body.length).toBe(10); // stale copies are kept for STALE answers
});

test('resize keeps the most recently used entries that fit', () => {
  const store = new CacheStore({ maxBytes: 100_000, maxEntryBytes: 10_000 });
  for (const k of ['a', 'b', 'c', 'd']) store.set(k, object(5_000));
  store.get('a'); // a is now the most recently used
  store.resize(2 * (5_000 + ENTRY_OVERHEAD_BYTES), 10_000);
  expect(store.entries).toBe(2);
  expect(store.get('a')).toBeDefined();
  expect(store.get('d')).toBeDefined();
  expect(store.get('b')).toBeUndefined();
});

test('delete and deleteWhere (cache purge) forget keys and their bytes', () => {
  const store = new CacheStore({ maxBytes: 100_000, maxEntryBytes: 10_000 });
  for (const k of ['zip a v1', 'mod a v1', 'zip b v1']) store.set(k, object(100));
  expect(store.delete('zip a v1')).toBe(true);
  expect(store.delete('zip a v1')).toBe(false);
  expect(store.deleteWhere((k) => k.endsWith(' a v1'))).toBe(1);
  expect(store.keys()).toEqual(['zip b v1']);
  expect(store.sizeBytes).toBe(100 + ENTRY_OVERHEAD_BYTES);
});
