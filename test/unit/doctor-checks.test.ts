// The pure parts of doctor/checks.ts: what `go env` implies, how GOPROXY is
// split, how listen addresses are dialled, how the upstream is read (a URL
// today, a chain when the upstreams work lands).
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { dialAddress, goproxyEntries, judgeGoEnv, socketAddress, summarizeCacheStats, upstreamsOf, type GoEnv } from '../../src/doctor/checks.js';

const base: GoEnv = { GOPROXY: 'http://127.0.0.1:8080', GOSUMDB: 'sum.golang.org', GONOSUMDB: '', GOPRIVATE: '', GONOPROXY: '', GOFLAGS: '' };
const proxy = { urls: ['http://127.0.0.1:8080'], interceptedHosts: ['proxy.golang.org'] };

describe('judgeGoEnv', () => {
  test.each([
    [{}, 'PASS', 'GOPROXY=http://127.0.0.1:8080'],
    [{ GOPROXY: 'https://proxy.golang.org,direct' }, 'PASS', 'falls back to direct'],
    [{ GOPROXY: 'direct' }, 'FAIL', 'GOPROXY=direct bypasses the proxy'],
    [{ GOPROXY: 'off' }, 'FAIL', 'turns module downloads off'],
    [{ GOPROXY: 'direct,http://127.0.0.1:8080' }, 'FAIL', 'bypasses'],
    [{ GOSUMDB: 'off' }, 'FAIL', 'GOSUMDB=off turns checksum verification off'],
    [{ GOPRIVATE: '*' }, 'FAIL', 'a bare * sends every module around the proxy'],
    [{ GOPRIVATE: 'corp.example.com' }, 'PASS', 'GOPRIVATE=corp.example.com (these modules skip the proxy)'],
    [{ GOPROXY: 'https://elsewhere.example' }, 'PASS', 'is not one of the proxy\'s addresses'],
  ] as const)('%j -> %s', (over, status, text) => {
    const v = judgeGoEnv({ ...base, ...over }, proxy);
    expect(v.status).toBe(status);
    expect(v.detail).toContain(text);
    expect(v.fix === '').toBe(status === 'PASS');
  });

  test('the fix for direct names the proxy and, with interception, the default', () => {
    expect(judgeGoEnv({ ...base, GOPROXY: 'direct' }, proxy).fix).toBe('go env -w GOPROXY=http://127.0.0.1:8080 (or unset GOPROXY: its default https://proxy.golang.org is intercepted)');
    expect(judgeGoEnv({ ...base, GOPROXY: 'direct' }, { urls: ['http://127.0.0.1:8080'], interceptedHosts: [] }).fix).toBe('go env -w GOPROXY=http://127.0.0.1:8080');
  });
});

test.each([
  ['https://a,direct', ['https://a', 'direct']],
  ['https://a|https://b', ['https://a', 'https://b']],
  ['', []],
])('goproxyEntries(%j)', (value, entries) => expect(goproxyEntries(value)).toEqual(entries));

test.each([
  ['127.0.0.1:9180', { host: '127.0.0.1', port: 9180 }],
  [':8080', { host: '127.0.0.1', port: 8080 }],
  ['0.0.0.0:80', { host: '127.0.0.1', port: 80 }],
  ['[::]:443', { host: '::1', port: 443 }],
  ['[::1]:9180', { host: '::1', port: 9180 }],
])('dialAddress(%j)', (address, dialled) => expect(dialAddress(address)).toEqual(dialled));

describe('upstreamsOf', () => {
  test('the single URL of today', () => {
    expect(upstreamsOf(parseConfig({ upstream: 'http://cache.internal:8081' }))).toEqual([{ name: 'upstream 1', url: 'http://cache.internal:8081' }]);
  });
  test.each([
    [['http://a', 'http://b'], [{ name: 'upstream 1', url: 'http://a' }, { name: 'upstream 2', url: 'http://b' }]],
    [[{ url: 'http://a', name: 'corp' }, { url: 'http://b' }], [{ name: 'corp', url: 'http://a' }, { name: 'upstream 2', url: 'http://b' }]],
    ['http://a,http://b|http://c', [{ name: 'upstream 1', url: 'http://a' }, { name: 'upstream 2', url: 'http://b' }, { name: 'upstream 3', url: 'http://c' }]],
  ])('a chain shape %j', (upstream, expected) => {
    expect(upstreamsOf({ upstream } as unknown as Config)).toEqual(expected);
  });
  test('private rules add their upstreams', () => {
    const config = { upstream: 'http://a', private: [{ match: ['corp.example.com/*'], upstream: [{ url: 'http://git.corp' }] }, { match: ['x/*'], status: 404 }] };
    expect(upstreamsOf(config as unknown as Config)).toEqual([{ name: 'upstream 1', url: 'http://a' }, { name: 'private corp.example.com/* 1', url: 'http://git.corp' }]);
  });
});

test.each([
  ['127.0.0.1:9180 (Stream)', '127.0.0.1:9180'],
  ['[::]:80 (Stream)', '[::]:80'],
  ['443 (Stream)', ':443'],
  ['/run/gpr.sock (Stream)', undefined],
  ['', undefined],
])('socketAddress(%j)', (listen, address) => expect(socketAddress(listen)).toBe(address));

test.each([
  [
    JSON.stringify({ memory: { entries: 3, bytes: 1200, maxBytes: 4096 }, disk: { dir: '/c', entries: 9, bytes: 90000, maxBytes: 1e6 }, fills: 0, requests: { hits: 5, misses: 2 } }),
    'memory 3 entries, 1200 bytes of 4096; disk 9 entries, 90000 bytes of 1000000; requests hits 5, misses 2',
  ],
  [JSON.stringify({ memory: { entries: 1, bytes: 10 }, disk: null }), 'memory 1 entries, 10 bytes'],
  [JSON.stringify({ other: 1 }), '{"other":1}'],
  ['hits 3\nmisses 1\n', 'hits 3 misses 1'],
])('summarizeCacheStats(%j)', (body, line) => expect(summarizeCacheStats(body)).toBe(line));
