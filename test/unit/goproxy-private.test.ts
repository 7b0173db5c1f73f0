// GOPRIVATE pattern matching against golang.org/x/mod module.MatchPrefixPatterns:
// every expected value below was printed by that function (the copy vendored
// in Go 1.19's toolchain, run once with GO111MODULE=off), so a difference in
// the port fails here.
import { describe, expect, test } from 'vitest';
import { badPattern, matchPrefixPatterns, pathMatch } from '../../src/goproxy/private.js';
import { parseProxyPath } from '../../src/goproxy/path.js';

describe('matchPrefixPatterns (x/mod semantics)', () => {
  test.each([
    ["corp.example/*", "corp.example/x", true],
    ["corp.example/*", "corp.example/x/y", true],
    ["corp.example/*", "corp.example", false],
    ["corp.example", "corp.example/x/y", true],
    ["corp.example", "corp.example.com/x", false],
    ["*.corp.example", "git.corp.example/a/b", true],
    ["*.corp.example", "corp.example/a", false],
    ["*", "anything/at/all", true],
    ["", "x/y", false],
    [",,", "x/y", false],
    ["a/b/", "a/b/c", true],
    ["a/b/", "a/bc", false],
    ["x/y,corp.example", "corp.example/z", true],
    [" corp.example", "corp.example/z", false],
    ["corp.example/?", "corp.example/a/b", true],
    ["corp.example/?", "corp.example/ab", false],
    ["corp.example/[abc]*", "corp.example/bcd/e", true],
    ["corp.example/[^abc]*", "corp.example/bcd", false],
    ["corp.example/[a-c]x", "corp.example/bx", true],
    ["corp.example/[", "corp.example/x", false],
    ["corp.example/\\*", "corp.example/*", true],
    ["corp.example/\\*", "corp.example/x", false],
    ["github.com/corp/*,*.internal", "github.com/corp/repo/sub", true],
    ["github.com/corp/*,*.internal", "github.com/other/repo", false],
    ["github.com/corp/*,*.internal", "svc.internal/tool", true],
    ["golang.org/toolchain", "golang.org/toolchain", true],
    ["a/*/c", "a/b/c/d", true],
    ["a/*/c", "a/b/d", false],
    ["a/*/c", "a/b", false],
    ["*/*", "x", false],
    ["*/*", "x/y/z", true],
    ["[a-", "a", false],
    ["a[", "a", false],
    ["ab*", "ab/c", true],
    ["a*b*c", "axxbyyc/d", true],
    ["a*b*c", "axxbyy", false],
  ] as Array<[string, string, boolean]>)('%j matches %j: %s', (globs, target, want) => {
    expect(matchPrefixPatterns(globs, target)).toBe(want);
  });
});

describe('pathMatch (Go path.Match)', () => {
  test.each([
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a/b', false],
    ['[', 'a', 'bad'],
    ['[^', 'a', 'bad'],
    ['[^bc', 'a', 'bad'],
    ['a[', 'a', 'bad'],
    ['a[', 'ab', 'bad'],
    ['*x', 'xxx', true],
  ] as Array<[string, string, boolean | 'bad']>)('%j ~ %j: %s', (pattern, name, want) => {
    expect(pathMatch(pattern, name)).toBe(want);
  });

  test('badPattern names the malformed glob of a list', () => {
    expect(badPattern('corp.example/*,*.internal')).toBeUndefined();
    expect(badPattern('corp.example/*,a[')).toBe('a[');
    expect(badPattern('[a-')).toBe('[a-');
  });
});

describe('toolchain modules parse like any module', () => {
  test.each([
    ['/golang.org/toolchain/@v/list', 'list', undefined],
    ['/golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.info', 'info', 'v0.0.1-go1.21.0.linux-amd64'],
    ['/golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.mod', 'mod', 'v0.0.1-go1.21.0.linux-amd64'],
    ['/golang.org/toolchain/@v/v0.0.1-go1.21.0.linux-amd64.zip', 'zip', 'v0.0.1-go1.21.0.linux-amd64'],
    ['/golang.org/toolchain/@v/v0.0.1-go1.22rc1.darwin-arm64.zip', 'zip', 'v0.0.1-go1.22rc1.darwin-arm64'],
    ['/sumdb/sum.golang.org/lookup/golang.org/toolchain@v0.0.1-go1.21.0.linux-amd64', 'sumdb', 'v0.0.1-go1.21.0.linux-amd64'],
  ])('%s', (path, kind, version) => {
    const r = parseProxyPath(path);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.request.kind).toBe(kind);
    expect('module' in r.request && r.request.module).toBe('golang.org/toolchain');
    if (version !== undefined) expect('version' in r.request && r.request.version).toBe(version);
    if (r.request.kind !== 'sumdb' && r.request.kind !== 'list' && r.request.kind !== 'latest') expect(r.request.canonical).toBe(true);
  });
});
