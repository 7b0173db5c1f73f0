// parseProxyPath: wire examples of the go command, invalid and hostile paths,
// checksum database paths, and properties over arbitrary strings.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { errorTable, gprError } from '../../src/errors.js';
import {
  checkModulePath, checkVersion, escapePath, escapeVersion, isCanonicalVersion, parseProxyPath, type ParseResult, type ProxyRequest,
} from '../../src/goproxy/path.js';

function request(url: string, opts?: Parameters<typeof parseProxyPath>[1]): ProxyRequest {
  const r = parseProxyPath(url, opts);
  if (!r.ok) throw new Error(`${url}: ${gprError(r.code, r.args).message}`);
  return r.request;
}

describe('module proxy paths', () => {
  test.each<[string, ProxyRequest]>([
    ['/github.com/!burnt!sushi/toml/@v/list', { kind: 'list', module: 'github.com/BurntSushi/toml', escapedModule: 'github.com/!burnt!sushi/toml' }],
    ['/github.com/%21burnt%21sushi/toml/@v/list', { kind: 'list', module: 'github.com/BurntSushi/toml', escapedModule: 'github.com/!burnt!sushi/toml' }],
    ['/example.com/x/@v/list?go-get=1', { kind: 'list', module: 'example.com/x', escapedModule: 'example.com/x' }],
    ['/example.com/x/@latest', { kind: 'latest', module: 'example.com/x', escapedModule: 'example.com/x' }],
    // A %2f becomes part of the path, and %40 an "@": decoding happens once, before routing.
    ['/example.com%2fx/%40v/list', { kind: 'list', module: 'example.com/x', escapedModule: 'example.com/x' }],
    ['/gopkg.in/yaml.v3/@v/list', { kind: 'list', module: 'gopkg.in/yaml.v3', escapedModule: 'gopkg.in/yaml.v3' }],
    [
      '/example.com/x/@v/v3.0.0+incompatible.zip',
      { kind: 'zip', module: 'example.com/x', escapedModule: 'example.com/x', version: 'v3.0.0+incompatible', escapedVersion: 'v3.0.0+incompatible', canonical: true },
    ],
    [
      '/example.com/x/@v/v1.0.0-%21r%21c1.info',
      { kind: 'info', module: 'example.com/x', escapedModule: 'example.com/x', version: 'v1.0.0-RC1', escapedVersion: 'v1.0.0-!r!c1', canonical: true },
    ],
    [
      '/example.com/x/v2/@v/v2.1.0.mod',
      { kind: 'mod', module: 'example.com/x/v2', escapedModule: 'example.com/x/v2', version: 'v2.1.0', escapedVersion: 'v2.1.0', canonical: true },
    ],
    [
      '/example.com/x/@v/v0.0.0-20240101000000-abcdefabcdef.info',
      {
        kind: 'info', module: 'example.com/x', escapedModule: 'example.com/x',
        version: 'v0.0.0-20240101000000-abcdefabcdef', escapedVersion: 'v0.0.0-20240101000000-abcdefabcdef', canonical: true,
      },
    ],
    [
      '/example.com/x/@v/master.info',
      { kind: 'info', module: 'example.com/x', escapedModule: 'example.com/x', version: 'master', escapedVersion: 'master', canonical: false },
    ],
    [
      '/example.com/x/@v/v1.2.info',
      { kind: 'info', module: 'example.com/x', escapedModule: 'example.com/x', version: 'v1.2', escapedVersion: 'v1.2', canonical: false },
    ],
    [
      '/example.com/x/@v/v1.2.3+meta.info',
      { kind: 'info', module: 'example.com/x', escapedModule: 'example.com/x', version: 'v1.2.3+meta', escapedVersion: 'v1.2.3+meta', canonical: false },
    ],
    [
      '/example.com/x/@v/!feature-x.info',
      { kind: 'info', module: 'example.com/x', escapedModule: 'example.com/x', version: 'Feature-x', escapedVersion: '!feature-x', canonical: false },
    ],
  ])('%s', (url, want) => {
    expect(request(url)).toEqual(want);
  });

  test('path is the decoded path without the query; "+" stays "+"', () => {
    expect(parseProxyPath('/example.com/x/@v/v1.0.0-%21r%21c1.info?x=1')).toMatchObject({ ok: true, path: '/example.com/x/@v/v1.0.0-!r!c1.info' });
    expect(parseProxyPath('/example.com/x/@v/v3.0.0%2bincompatible.zip')).toMatchObject({ ok: true, path: '/example.com/x/@v/v3.0.0+incompatible.zip' });
  });
});

describe('invalid paths', () => {
  test.each<[string, keyof typeof errorTable, string]>([
    ['/github.com/BurntSushi/toml/@v/list', 'GPR_ERR_BAD_MODULE_PATH', `invalid module path "github.com/BurntSushi/toml": upper-case 'B' must be escaped as '!b'`],
    ['/github.com/!!burnt/toml/@v/list', 'GPR_ERR_BAD_MODULE_PATH', `invalid module path "github.com/!!burnt/toml": '!' must be followed by a lower-case letter`],
    ['/github.com/burnt!/toml/@v/list', 'GPR_ERR_BAD_MODULE_PATH', `invalid module path "github.com/burnt!/toml": '!' must be followed by a lower-case letter`],
    ['/github.com/burnt!/@v/list', 'GPR_ERR_BAD_MODULE_PATH', `invalid module path "github.com/burnt!": trailing '!'`],
    ['/example.com/x/v1/@v/list', 'GPR_ERR_BAD_MODULE_PATH', 'invalid module path "example.com/x/v1": invalid major version suffix "/v1"'],
    ['/example/x/@v/list', 'GPR_ERR_BAD_MODULE_PATH', 'invalid module path "example/x": missing dot in first path element'],
    ['/example.com/x%25/@v/list', 'GPR_ERR_BAD_MODULE_PATH', `invalid module path "example.com/x%": invalid char '%'`],
    ['/@v/list', 'GPR_ERR_BAD_MODULE_PATH', 'invalid module path "": empty string'],
    ['/@latest', 'GPR_ERR_BAD_MODULE_PATH', 'invalid module path "": empty string'],
    ['/a/../b/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/a/../b/@v/list" has a ".." element'],
    ['/%2e%2e/x/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/../x/@v/list" has a ".." element'],
    ['/example.com/x/%2E%2E/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x/../@v/list" has a ".." element'],
    ['/example.com/./x/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/./x/@v/list" has a "." element'],
    ['/example.com/x/@v/..', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x/@v/.." has a ".." element'],
    ['/example.com//x/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com//x/@v/list" has an empty element'],
    ['/example.com/x%2f/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x//@v/list" has an empty element'],
    ['/example.com/x/@v/list%00', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x/@v/list\\u0000" has a control character'],
    ['/example.com/x%0a/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x\\n/@v/list" has a control character'],
    ['/example.com/x%7f/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x\\u007f/@v/list" has a control character'],
    ['/example.com/%C3%A9/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/\\u00e9/@v/list" has a non-ASCII character'],
    ['/example.com/é/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/\\u00e9/@v/list" has a non-ASCII character'],
    ['/example.com/x%5c..%5c/@v/list', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: "/example.com/x\\\\..\\\\/@v/list" has a backslash'],
    ['/%zz', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: malformed %-escape in "/%zz"'],
    ['/example.com/x/@v/%ff.info', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: malformed %-escape in "/example.com/x/@v/%ff.info"'],
    ['/example.com/x/@v/v1%', 'GPR_ERR_BAD_ENCODING', 'invalid request path encoding: malformed %-escape in "/example.com/x/@v/v1%"'],
    ['/example.com/x/@v/master.zip', 'GPR_ERR_BAD_VERSION', 'invalid version "master": version must be canonical for .mod/.zip'],
    ['/example.com/x/@v/v1.2.mod', 'GPR_ERR_BAD_VERSION', 'invalid version "v1.2": version must be canonical for .mod/.zip'],
    ['/example.com/x/@v/v1.0.0-RC1.info', 'GPR_ERR_BAD_VERSION', `invalid version "v1.0.0-RC1": upper-case 'R' must be escaped as '!r'`],
    ['/example.com/x/@v/v1.0.0-!!c1.info', 'GPR_ERR_BAD_VERSION', `invalid version "v1.0.0-!!c1": '!' must be followed by a lower-case letter`],
    ['/example.com/x/@v/a:b.info', 'GPR_ERR_BAD_VERSION', `invalid version "a:b": invalid char ':'`],
    ['/example.com/x/@v/v1..info', 'GPR_ERR_BAD_VERSION', 'invalid version "v1.": trailing dot in path element'],
    ['/example.com/x/@v/.info', 'GPR_ERR_BAD_VERSION', 'invalid version "": empty path element'],
    // Valid for x/mod, but would change meaning when put in a backend URL.
    ['/example.com/x/@v/%252e%252e%252fsecret.info', 'GPR_ERR_BAD_VERSION', `invalid version "%2e%2e%2fsecret": char '%' is not allowed in a proxy URL`],
    ['/example.com/x/@v/a%23b.info', 'GPR_ERR_BAD_VERSION', `invalid version "a#b": char '#' is not allowed in a proxy URL`],
    ['/example.com/x/@v/a%20b.info', 'GPR_ERR_BAD_VERSION', `invalid version "a b": char ' ' is not allowed in a proxy URL`],
    ['/example.com/x/@v/v1.0.0.exe', 'GPR_ERR_NOT_PROXY_PATH', '"/example.com/x/@v/v1.0.0.exe" is not a Go module proxy path'],
    ['/example.com/x/@v/', 'GPR_ERR_NOT_PROXY_PATH', '"/example.com/x/@v/" is not a Go module proxy path'],
    ['/example.com/x/@v/list/', 'GPR_ERR_NOT_PROXY_PATH', '"/example.com/x/@v/list/" is not a Go module proxy path'],
    ['/example.com/x/@v/a/b.info', 'GPR_ERR_NOT_PROXY_PATH', '"/example.com/x/@v/a/b.info" is not a Go module proxy path'],
    ['/example.com/x/@v/v1.0.0.info%3Fx', 'GPR_ERR_NOT_PROXY_PATH', '"/example.com/x/@v/v1.0.0.info?x" is not a Go module proxy path'],
    ['/example.com/x', 'GPR_ERR_NOT_PROXY_PATH', '"/example.com/x" is not a Go module proxy path'],
    ['/', 'GPR_ERR_NOT_PROXY_PATH', '"/" is not a Go module proxy path'],
    ['', 'GPR_ERR_NOT_PROXY_PATH', '"" is not a Go module proxy path'],
    ['*', 'GPR_ERR_NOT_PROXY_PATH', '"*" is not a Go module proxy path'],
    ['http://example.com/x/@v/list', 'GPR_ERR_NOT_PROXY_PATH', '"http://example.com/x/@v/list" is not a Go module proxy path'],
    ['%2fexample.com/x/@v/list', 'GPR_ERR_NOT_PROXY_PATH', '"%2fexample.com/x/@v/list" is not a Go module proxy path'],
  ])('%j -> %s', (url, code, message) => {
    const r = parseProxyPath(url);
    expect(r).toMatchObject({ ok: false, code });
    if (!r.ok) expect(gprError(r.code, r.args).message).toBe(message);
  });

  test('a 10 KB path is too long; the limit counts UTF-8 bytes of the path, not the query', () => {
    const long = `/example.com/${'a'.repeat(10 * 1024)}/@v/list`;
    expect(parseProxyPath(long)).toEqual({ ok: false, code: 'GPR_ERR_PATH_TOO_LONG', args: [String(long.length), '4096'] });
    expect(parseProxyPath(`/example.com/x/@v/list?${'q'.repeat(10 * 1024)}`)).toMatchObject({ ok: true });
    const exact = `/example.com/${'a'.repeat(4096 - '/example.com//@v/list'.length)}/@v/list`;
    expect(parseProxyPath(exact)).toMatchObject({ ok: true });
    expect(parseProxyPath(`${exact}`, { maxPathBytes: 4095 })).toMatchObject({ ok: false, code: 'GPR_ERR_PATH_TOO_LONG', args: ['4096', '4095'] });
    // 3001 UTF-16 code units, 6001 bytes
    expect(parseProxyPath(`/${'é'.repeat(3000)}`)).toMatchObject({ ok: false, code: 'GPR_ERR_PATH_TOO_LONG', args: ['6001', '4096'] });
  });
});

describe('checksum database paths', () => {
  const sum = '/sumdb/sum.golang.org/';
  test.each<[string, string, 'supported' | 'latest' | 'lookup' | 'tile', boolean]>([
    [`${sum}supported`, 'supported', 'supported', false],
    [`${sum}latest`, 'latest', 'latest', false],
    [`${sum}lookup/golang.org/x/text@v0.3.0`, 'lookup/golang.org/x/text@v0.3.0', 'lookup', true],
    [`${sum}lookup/github.com/%21burnt%21sushi/toml@v1.2.0`, 'lookup/github.com/!burnt!sushi/toml@v1.2.0', 'lookup', true],
    [`${sum}lookup/example.com/x@v3.0.0+incompatible`, 'lookup/example.com/x@v3.0.0+incompatible', 'lookup', true],
    [`${sum}tile/8/0/001`, 'tile/8/0/001', 'tile', true],
    [`${sum}tile/8/0/001.p/5`, 'tile/8/0/001.p/5', 'tile', false],
    [`${sum}tile/8/1/000.p/255`, 'tile/8/1/000.p/255', 'tile', false],
    [`${sum}tile/8/0/x123/x456/789`, 'tile/8/0/x123/x456/789', 'tile', true],
    [`${sum}tile/8/0/x001/x000/000`, 'tile/8/0/x001/x000/000', 'tile', true],
    [`${sum}tile/8/data/x001/234`, 'tile/8/data/x001/234', 'tile', true],
    [`${sum}tile/8/data/x001/234.p/17`, 'tile/8/data/x001/234.p/17', 'tile', false],
    [`${sum}tile/30/0/000`, 'tile/30/0/000', 'tile', true],
    [`${sum}tile/1/0/000.p/1`, 'tile/1/0/000.p/1', 'tile', false],
  ])('%s', (url, sumdbPath, op, immutable) => {
    const lookup = /^lookup\/(.*)@(.*)$/.exec(sumdbPath);
    // A lookup also carries its decoded module and version (private-pattern checks).
    const named = lookup ? { module: (lookup[1] as string).replace(/!([a-z])/g, (_, c: string) => c.toUpperCase()), version: lookup[2] } : {};
    expect(request(url)).toEqual({ kind: 'sumdb', name: 'sum.golang.org', sumdbPath, op, immutable, ...named });
  });

  test.each<[string, keyof typeof errorTable]>([
    ['/sumdb/sum.golang.org', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/other', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/latest/', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/Sum.golang.org/latest', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum_golang.org/latest', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/-sum.golang.org/latest', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org:443/latest', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/lookup/golang.org/x/text', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/lookup/golang.org/x/text@master', 'GPR_ERR_BAD_VERSION'],
    ['/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3', 'GPR_ERR_BAD_VERSION'],
    ['/sumdb/sum.golang.org/lookup/golang.org/x/text@v0.3.0/go.mod', 'GPR_ERR_BAD_VERSION'],
    ['/sumdb/sum.golang.org/lookup/Golang.org/x/text@v0.3.0', 'GPR_ERR_BAD_MODULE_PATH'],
    ['/sumdb/sum.golang.org/lookup/@v0.3.0', 'GPR_ERR_BAD_MODULE_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/1', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/0001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/x000/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/x01/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/001/x001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/x001/x002/x003/x004/x005/x006/007', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/001.p/256', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/001.p/0', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/001.p/05', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/001.p/', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/001.p', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/0/0/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/31/0/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/08/0/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/01/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/-1/001', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0', 'GPR_ERR_NOT_PROXY_PATH'],
    ['/sumdb/sum.golang.org/tile/8/0/../001', 'GPR_ERR_BAD_ENCODING'],
  ])('%s -> %s', (url, code) => {
    expect(parseProxyPath(url)).toMatchObject({ ok: false, code });
  });

  test('with sumdbHost, /latest, /lookup/... and /tile/... are checksum database requests for that host', () => {
    const opts = { sumdbHost: 'sum.golang.org' };
    expect(request('/latest', opts)).toEqual({ kind: 'sumdb', name: 'sum.golang.org', sumdbPath: 'latest', op: 'latest', immutable: false });
    expect(request('/lookup/golang.org/x/text@v0.3.0', opts)).toMatchObject({ op: 'lookup', sumdbPath: 'lookup/golang.org/x/text@v0.3.0', immutable: true });
    expect(request('/tile/8/0/001.p/5', opts)).toMatchObject({ op: 'tile', name: 'sum.golang.org', immutable: false });
    expect(request('/sumdb/sum.golang.org/supported', opts)).toMatchObject({ op: 'supported' });
    expect(request('/example.com/x/@v/list', opts)).toMatchObject({ kind: 'list' });
    expect(parseProxyPath('/supported', opts)).toMatchObject({ ok: false, code: 'GPR_ERR_NOT_PROXY_PATH' });
    expect(parseProxyPath('/latest/x', opts)).toMatchObject({ ok: false, code: 'GPR_ERR_NOT_PROXY_PATH' });
    expect(parseProxyPath('/tile/8/0/1', opts)).toMatchObject({ ok: false, code: 'GPR_ERR_NOT_PROXY_PATH' });
    expect(parseProxyPath('/latest')).toMatchObject({ ok: false, code: 'GPR_ERR_NOT_PROXY_PATH' });
  });
});

describe('properties', () => {
  const pieces = fc.constantFrom(
    '/', '/', '/', '@v', '@latest', '/@v/', 'list', '.info', '.mod', '.zip', '.', '..', '%2e', '%2E', '%2f', '%2F',
    '%21', '!', '%', '%zz', '%00', '%0a', '%7f', '%c3%a9', '%ff', '%5c', '\\', '+', '?', '#', '%23', '%25', '@', ' ',
    'example.com', 'x', 'X', 'v1.0.0', 'v2', '+incompatible', 'sumdb', 'sum.golang.org', 'lookup', 'tile', 'latest',
    'supported', 'data', '8', '0', '001', 'x001', '.p', '~1', 'con', 'é', '\u0000', '\ud800',
  );
  const pathish = fc.array(pieces, { maxLength: 25 }).map((a) => a.join(''));
  // Near-valid paths: module-like elements (some hostile) and a real endpoint, so that some parse.
  const segment = fc.constantFrom(
    'example.com', 'x', '!x', 'X', '..', '.', '%2e%2e', '%2E', 'v2', 'v1', 'a%2fb', '%21a', 'x..y', 'z~1', 'con', '',
    '%00', 'é', '%5c', 'sumdb/sum.golang.org/tile/8/0', 'sumdb/sum.golang.org/tile/8/data', 'sumdb/sum.golang.org/lookup/example.com',
  );
  const tail = fc.constantFrom(
    '/@v/list', '/@latest', '/@v/v1.0.0.info', '/@v/master.zip', '/@v/v1.0.0-%21r%21c1.mod', '/@v/%2e%2e.info', '/@v/%252e.info',
    '/@v/v1.0.0+incompatible.zip', '/@v/..', '/@v/', '/@v/.info', '?go-get=1', '', '@v0.1.0', '/001', '/x001/002.p/7', '/001.p/256',
  );
  const structured = fc.tuple(fc.array(segment, { minLength: 1, maxLength: 6 }), tail).map(([p, t]) => `/${p.join('/')}${t}`);
  const inputs = fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary' }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
    pathish,
    pathish.map((p) => `/${p}`),
    { arbitrary: structured, weight: 5 },
  );

  function checkInvariants(r: ParseResult): void {
    if (!r.ok) {
      expect(errorTable[r.code]).toBeDefined();
      // Every argument is printable ASCII, so the error message is safe to print and log.
      for (const arg of r.args) expect(arg).toMatch(/^[\x20-\x7e]*$/);
      return;
    }
    expect(r.path).toMatch(/^\/[\x21-\x7e]*$/);
    const elems = r.path.split('/').slice(1);
    expect(elems).not.toContain('..');
    expect(elems).not.toContain('.');
    expect(elems.slice(0, -1)).not.toContain('');
    const req = r.request;
    if (req.kind === 'sumdb') return;
    // "x..y" is a valid element for x/mod; ".." as an element is not.
    expect(req.module.split('/')).not.toContain('..');
    expect(checkModulePath(req.module)).toBeUndefined();
    expect(escapePath(req.module)).toBe(req.escapedModule);
    if (req.kind === 'list' || req.kind === 'latest') return;
    expect(checkVersion(req.version)).toBeUndefined();
    expect(escapeVersion(req.version)).toBe(req.escapedVersion);
    expect(req.escapedVersion).toMatch(/^[A-Za-z0-9._~!$&()+,=@-]+$/);
  }

  test('parseProxyPath never throws; an ok result has a safe path and a valid module', () => {
    fc.assert(
      fc.property(inputs, fc.option(fc.constant('sum.golang.org'), { nil: undefined }), (url, sumdbHost) => {
        checkInvariants(parseProxyPath(url, { sumdbHost }));
      }),
      { numRuns: 5000 },
    );
  });

  test('every valid module path and version, escaped and percent-encoded as the go command does, parses back', () => {
    const modulePath = fc
      .tuple(
        fc.stringMatching(/^[a-z0-9]{1,8}(\.[a-z0-9-]{1,8}){1,3}$/),
        fc.array(fc.stringMatching(/^[A-Za-z0-9._~-]{1,10}$/), { maxLength: 4 }),
      )
      .map(([first, rest]) => [first, ...rest].join('/'))
      .filter((p) => checkModulePath(p) === undefined);
    const version = fc
      .stringMatching(/^v(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})(-[0-9A-Za-z.-]{1,20})?(\+incompatible)?$/)
      .filter((v) => checkVersion(v) === undefined);
    fc.assert(
      fc.property(modulePath, version, fc.constantFrom('info', 'mod', 'zip'), (mod, v, ext) => {
        const url = `/${encodeURIComponent(escapePath(mod) ?? '').replace(/%2F/g, '/')}/@v/${encodeURIComponent(escapeVersion(v) ?? '')}.${ext}`;
        const r = parseProxyPath(url);
        checkInvariants(r);
        const canonical = isCanonicalVersion(v);
        if (ext === 'info' || canonical) {
          expect(r).toMatchObject({ ok: true, request: { kind: ext, module: mod, version: v, canonical } });
        } else {
          expect(r).toMatchObject({ ok: false, code: 'GPR_ERR_BAD_VERSION' });
        }
      }),
    );
  });
});
