// Pure rules of issue 7: which answers may be stored at all, which bodies are
// valid immutable .info/.mod/.zip objects, and which cache keys a purge of
// MODULE or MODULE@VERSION matches.
import { describe, expect, test } from 'vitest';
import { keyMatcher } from '../../src/cache/cache.js';
import { invalidImmutable, unstorableReason, validationBytes } from '../../src/cache/http.js';

describe('unstorableReason', () => {
  test.each([
    [{}, undefined],
    [{ 'cache-control': 'public, max-age=60' }, undefined],
    [{ 'cache-control': 'no-cache' }, undefined],
    [{ 'cache-control': 'no-store' }, 'Cache-Control: no-store'],
    [{ 'cache-control': 'max-age=0, No-Store' }, 'Cache-Control: no-store'],
    [{ 'cache-control': 'private' }, 'Cache-Control: private'],
    [{ 'cache-control': 'private="set-cookie", max-age=5' }, 'Cache-Control: private'],
    [{ 'set-cookie': ['a=b'] }, 'Set-Cookie'],
  ])('%j -> %s', (headers, want) => {
    expect(unstorableReason(headers)).toBe(want);
  });
});

describe('invalidImmutable', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  test.each([
    ['zip', b('PK\x03\x04rest'), true, undefined],
    ['zip', b('PK\x05\x06'), true, undefined],
    ['zip', b('<htm'), false, 'not a zip archive (no PK signature)'],
    ['info', b('{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z"}'), true, undefined],
    ['info', b('{"Time":"x"}'), true, 'JSON without a Version'],
    ['info', b('["v1.0.0"]'), true, 'JSON without a Version'],
    ['info', b('<html>'), true, 'not JSON'],
    ['info', b('{"Version":"v1'), false, 'larger than 1048576 bytes'],
    ['mod', b('module example.com/m\n\ngo 1.21\n'), true, undefined],
    ['mod', b('  <!DOCTYPE html>'), true, 'markup, not a go.mod'],
    ['mod', b('module x\x00'), true, 'not text (NUL byte)'],
    ['mod', Buffer.from([0x6d, 0xff, 0xfe]), true, 'not UTF-8 text'],
    ['mod', Buffer.from('module é', 'utf8').subarray(0, 8), false, undefined], // a prefix cut inside a character
    ['list', b('anything'), true, undefined],
  ] as const)('%s %j complete=%s -> %s', (kind, body, complete, want) => {
    expect(invalidImmutable(kind, body, complete)).toBe(want);
  });

  test('bytes needed to decide', () => {
    expect([validationBytes('zip'), validationBytes('mod'), validationBytes('info'), validationBytes('list')]).toEqual([4, 8192, Infinity, 0]);
  });
});

describe('keyMatcher (cache purge)', () => {
  test.each([
    ['github.com/BurntSushi/toml', undefined, 'zip github.com/!burnt!sushi/toml v1.0.0', true],
    ['github.com/BurntSushi/toml', undefined, 'list github.com/!burnt!sushi/toml', true],
    ['github.com/BurntSushi/toml', 'v1.0.0', 'zip github.com/!burnt!sushi/toml v1.0.0', true],
    ['github.com/BurntSushi/toml', 'v1.0.0', 'zip github.com/!burnt!sushi/toml v1.0.1', false],
    ['github.com/BurntSushi/toml', undefined, 'zip github.com/!burnt!sushi/toml/v2 v2.0.0', false],
    ['sum.golang.org', undefined, 'sumdb sum.golang.org lookup/x', false],
  ])('%s@%s matches %s: %s', (module, version, key, want) => {
    expect(keyMatcher(module, version)(key)).toBe(want);
  });
});
