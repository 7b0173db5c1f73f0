// Pure rules: rewrite templates and prefixes, cache keys, freshness, ETags,
// If-None-Match.
import { describe, expect, test } from 'vitest';
import { bodyEtag, cacheKey, freshness, keyEtag, notModified } from '../../src/cache/http.js';
import { parseProxyPath, type ProxyRequest } from '../../src/goproxy/path.js';
import { compileRewriter } from '../../src/rewrite/rules.js';

function req(path: string): ProxyRequest {
  const r = parseProxyPath(path);
  if (!r.ok) throw new Error(`${path}: ${r.code}`);
  return r.request;
}

describe('rewrite', () => {
  test.each([
    ['/github.com/!burnt!sushi/toml/@v/list', '/v1/modules/github.com/!burnt!sushi/toml/list', '/github.com/!burnt!sushi/toml/@v/list'],
    ['/example.com/x/@latest', '/v1/modules/example.com/x/latest', '/example.com/x/@latest'],
    ['/example.com/x/@v/v1.0.0-%21r%21c1.info', '/v1/modules/example.com/x/versions/v1.0.0-!r!c1/info', '/example.com/x/@v/v1.0.0-!r!c1.info'],
    ['/example.com/x/@v/v3.0.0+incompatible.zip', '/v1/modules/example.com/x/versions/v3.0.0+incompatible/zip', '/example.com/x/@v/v3.0.0+incompatible.zip'],
    ['/example.com/x/v2/@v/v2.0.0.mod', '/v1/modules/example.com/x/v2/versions/v2.0.0/mod', '/example.com/x/v2/@v/v2.0.0.mod'],
    ['/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0', '/v1/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0', '/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0'],
  ])('%s', (path, internal, goproxy) => {
    expect(compileRewriter('internal', 'http://cache:3000')(req(path))).toBe(internal);
    expect(compileRewriter('goproxy', 'https://proxy.golang.org')(req(path))).toBe(goproxy);
    expect(compileRewriter('goproxy', 'https://art.example/api/go/repo/')(req(path))).toBe(`/api/go/repo${goproxy}`);
  });
});

describe('cache rules', () => {
  const ttl = { mutableTtlMs: 60_000, notFoundTtlMs: 30_000 };
  test.each([
    ['/example.com/x/@v/v1.0.0.zip', 200, { immutable: true, ttlMs: Infinity }],
    ['/example.com/x/@v/v1.0.0.mod', 200, { immutable: true, ttlMs: Infinity }],
    ['/example.com/x/@v/v1.0.0.info', 200, { immutable: true, ttlMs: Infinity }],
    ['/example.com/x/@v/master.info', 200, { immutable: false, ttlMs: 60_000 }],
    ['/example.com/x/@v/list', 200, { immutable: false, ttlMs: 60_000 }],
    ['/example.com/x/@latest', 200, { immutable: false, ttlMs: 60_000 }],
    ['/example.com/x/@v/v1.0.0.zip', 404, { immutable: false, ttlMs: 30_000 }],
    ['/example.com/x/@v/v1.0.0.zip', 410, { immutable: false, ttlMs: 30_000 }],
    ['/example.com/x/@v/v1.0.0.zip', 403, undefined],
    ['/example.com/x/@v/v1.0.0.zip', 206, undefined],
  ])('%s %i', (path, status, want) => {
    expect(freshness(req(path), status, ttl)).toEqual(want);
  });

  test('keys name the object, not the backend path', () => {
    expect(cacheKey(req('/example.com/x/@v/v1.0.0-%21r%21c1.info'))).toBe('info example.com/x v1.0.0-!r!c1');
    expect(cacheKey(req('/example.com/x/@v/list'))).not.toBe(cacheKey(req('/example.com/x/@latest')));
  });

  test('ETags', () => {
    expect(bodyEtag(Buffer.from('a'))).toBe(bodyEtag(Buffer.from('a')));
    expect(bodyEtag(Buffer.from('a'))).not.toBe(bodyEtag(Buffer.from('b')));
    expect(keyEtag('zip a v1')).toMatch(/^"k-[A-Za-z0-9_-]{25}"$/);
  });

  test.each([
    [undefined, '"a"', false],
    ['"a"', '"a"', true],
    ['W/"a"', '"a"', true],
    ['"b", "a"', '"a"', true],
    ['"b"', '"a"', false],
    ['*', '"a"', true],
  ])('If-None-Match %s vs %s', (header, etag, want) => {
    expect(notModified(header, etag)).toBe(want);
  });
});
