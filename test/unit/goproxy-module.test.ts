// Module paths, versions and their case-encoding, against the vectors of
// golang.org/x/mod module/module_test.go and semver/semver_test.go.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  checkModulePath, checkVersion, escapePath, escapeVersion, unescapePath, unescapeVersion,
} from '../../src/goproxy/module.js';
import { canonicalVersion, isCanonicalVersion, isValidSemver } from '../../src/goproxy/semver.js';

// x/mod checkPathTests: path and whether CheckPath accepts it.
const checkPathTests: [string, boolean][] = [
  ['x.y/z', true], ['x.y', true],
  // Go's "x.y/\xFFz" is invalid UTF-8; a JS string has non-ASCII or a lone surrogate instead.
  ['', false], ['x.y/\u00ffz', false], ['x.y/\ud800z', false], ['/x.y/z', false], ['x./z', false], ['.x/z', false], ['-x/z', false],
  ['x..y/z', true], ['x.y/z/../../w', false], ['x.y//z', false], ['x.y/z//w', false], ['x.y/z/', false],
  ['x.y/z/v0', false], ['x.y/z/v1', false], ['x.y/z/v2', true], ['x.y/z/v2.0', false], ['X.y/z', false],
  ['!x.y/z', false], ['_x.y/z', false], ['x.y!/z', false], ['x.y"/z', false], ['x.y#/z', false],
  ['x.y$/z', false], ['x.y%/z', false], ['x.y&/z', false], ["x.y'/z", false], ['x.y(/z', false],
  ['x.y)/z', false], ['x.y*/z', false], ['x.y+/z', false], ['x.y,/z', false], ['x.y-/z', true],
  ['x.y./zt', false], ['x.y:/z', false], ['x.y;/z', false], ['x.y</z', false], ['x.y=/z', false],
  ['x.y>/z', false], ['x.y?/z', false], ['x.y@/z', false], ['x.y[/z', false], ['x.y\\/z', false],
  ['x.y]/z', false], ['x.y^/z', false], ['x.y_/z', false], ['x.y`/z', false], ['x.y{/z', false],
  ['x.y}/z', false], ['x.y~/z', false], ['x.y/z!', false], ['x.y/z"', false], ['x.y/z#', false],
  ['x.y/z$', false], ['x.y/z%', false], ['x.y/z&', false], ["x.y/z'", false], ['x.y/z(', false],
  ['x.y/z)', false], ['x.y/z*', false], ['x.y/z+', false], ['x.y/z,', false], ['x.y/z-', true],
  ['x.y/z.t', true], ['x.y/z/t', true], ['x.y/z:', false], ['x.y/z;', false], ['x.y/z<', false],
  ['x.y/z=', false], ['x.y/z>', false], ['x.y/z?', false], ['x.y/z@', false], ['x.y/z[', false],
  ['x.y/z\\', false], ['x.y/z]', false], ['x.y/z^', false], ['x.y/z_', true], ['x.y/z`', false],
  ['x.y/z{', false], ['x.y/z}', false], ['x.y/z~', true], ['x.y/x.foo', true], ['x.y/aux.foo', false],
  ['x.y/prn', false], ['x.y/prn2', true], ['x.y/com', true], ['x.y/com1', false], ['x.y/com1.txt', false],
  ['x.y/calm1', true], ['x.y/z~0', false], ['x.y/z~09', false], ['x.y/z09', true], ['x.y/z09~', true],
  ['x.y/z09~09z', true], ['x.y/z09~09z~09', false], ['github.com/!123/logrus', false],
  ['github.com/user/unicode/испытание', false], ['../x', false], ['./y', false], ['x:y', false],
  ['\\temp\\foo', false], ['.gitignore', false], ['.github/ISSUE_TEMPLATE', false], ['x☺y', false],
  // x/mod splitPathVersionTests, which must all be valid module paths.
  ['x.y/z/v3', true], ['x.y/v', true],
  ['gopkg.in/yaml.v0', true], ['gopkg.in/yaml.v1', true], ['gopkg.in/yaml.v2', true], ['gopkg.in/yaml.v3', true],
  // gopkg.in conventions (x/mod splitGopkgIn).
  ['gopkg.in/yaml', false], ['gopkg.in/yaml.v01', false], ['gopkg.in/yaml.v1-unstable', true],
  ['gopkg.in/yaml.v2/sub', false], ['gopkg.in/yaml.v0-unstable', false],
  // More: Windows names are case-insensitive; a digit-first domain and dashes are fine.
  ['x.y/CON', false], ['x.y/Nul.txt', false], ['123.example/z', true], ['x-y.z/a-b', true], ['x.y/v10', true],
  ['x.y/v01', false], ['x.y/z/v1.2.3', false],
];

describe('checkModulePath (x/mod CheckPath)', () => {
  test.each(checkPathTests)('%j valid=%s', (path, ok) => {
    expect(checkModulePath(path) === undefined).toBe(ok);
  });

  test.each([
    ['', 'empty string'],
    ['/x.y/z', 'leading slash'],
    ['x.y//z', 'double slash'],
    ['x.y/z/', 'trailing slash'],
    ['x.y/z%', "invalid char '%'"],
    ['x.y/../z', 'invalid path element ".."'],
    ['.x/z', 'leading dot in path element'],
    ['x./z', 'trailing dot in path element'],
    ['xy/z', 'missing dot in first path element'],
    ['X.y/z', "invalid char 'X' in first path element"],
    ['x.y/com1.txt', '"com1" disallowed as path element component on Windows'],
    ['x.y/z~09', 'trailing tilde and digits in path element'],
    ['x.y/z/v1', 'invalid major version suffix "/v1"'],
    ['x.y/z\u0000', 'invalid char U+0000'],
  ])('%j: %s', (path, reason) => {
    expect(checkModulePath(path)).toBe(reason);
  });
});

describe('escapePath / unescapePath', () => {
  // x/mod escapeTests
  test.each([
    ['ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789', 'ascii.com/abcdefghijklmnopqrstuvwxyz.-/~_0123456789'],
    ['github.com/GoogleCloudPlatform/omega', 'github.com/!google!cloud!platform/omega'],
    ['github.com/BurntSushi/toml', 'github.com/!burnt!sushi/toml'],
    ['github.com/Azure/azure-sdk-for-go', 'github.com/!azure/azure-sdk-for-go'],
  ])('%s <-> %s', (path, escaped) => {
    expect(escapePath(path)).toBe(escaped);
    expect(unescapePath(escaped)).toBe(path);
  });

  test.each(checkPathTests.filter(([, ok]) => !ok))('invalid path %j neither escapes nor unescapes', (path) => {
    expect(escapePath(path)).toBeUndefined();
    expect(unescapePath(path)).toBeUndefined();
  });

  // x/mod badUnescape, plus a non-ASCII letter and "!" before a non-letter
  test.each([
    'github.com/GoogleCloudPlatform/omega',
    'github.com/!google!cloud!platform!/omega',
    'github.com/!0google!cloud!platform/omega',
    'github.com/!_google!cloud!platform/omega',
    'github.com/!!google!cloud!platform/omega',
    '',
    'github.com/x!',
    'github.com/!Ax',
    'github.com/!éx',
    'github.com/é',
  ])('unescapePath(%j) is undefined', (escaped) => {
    expect(unescapePath(escaped)).toBeUndefined();
  });
});

describe('checkVersion / escapeVersion / unescapeVersion', () => {
  test.each([
    ['v1.0.0', 'v1.0.0'],
    ['v1.0.0-RC1', 'v1.0.0-!r!c1'],
    ['v3.0.0+incompatible', 'v3.0.0+incompatible'],
    ['v0.0.0-20240101000000-abcdefabcdef', 'v0.0.0-20240101000000-abcdefabcdef'],
    ['master', 'master'],
    ['Feature_Branch', '!feature_!branch'],
    ['.hidden', '.hidden'],
    ['a b#c$d%e&f(g)h+i,j=k@l[m]n^o{p}q~r', 'a b#c$d%e&f(g)h+i,j=k@l[m]n^o{p}q~r'],
  ])('%j <-> %j', (v, escaped) => {
    expect(checkVersion(v)).toBeUndefined();
    expect(escapeVersion(v)).toBe(escaped);
    expect(unescapeVersion(escaped)).toBe(v);
  });

  test.each([
    ['', 'empty path element'],
    ['.', 'invalid path element "."'],
    ['..', 'invalid path element ".."'],
    ['v1.', 'trailing dot in path element'],
    ['a/b', "invalid char '/'"],
    ['a!b', "invalid char '!'"],
    ['a:b', "invalid char ':'"],
    ['a?b', "invalid char '?'"],
    ['a*b', "invalid char '*'"],
    ['a\\b', "invalid char '\\'"],
    ['a\nb', 'invalid char U+000A'],
    ['vé', 'invalid char U+00E9'],
    ['aux', '"aux" disallowed as path element component on Windows'],
  ])('checkVersion(%j) = %j', (v, reason) => {
    expect(checkVersion(v)).toBe(reason);
    expect(escapeVersion(v)).toBeUndefined();
  });

  test.each(['v1.0.0-RC1', 'v1.0.0-!r!', 'v1.0.0-!!r', 'v1.0.0-!1', '..', 'a/b'])('unescapeVersion(%j) is undefined', (escaped) => {
    expect(unescapeVersion(escaped)).toBeUndefined();
  });
});

// x/mod semver_test.go: input and semver.Canonical (empty = invalid).
const semverTests: [string, string][] = [
  ['bad', ''], ['v1-alpha.beta.gamma', ''], ['v1-pre', ''], ['v1+meta', ''], ['v1-pre+meta', ''],
  ['v1.2-pre', ''], ['v1.2+meta', ''], ['v1.2-pre+meta', ''],
  ['v1.0.0-alpha', 'v1.0.0-alpha'], ['v1.0.0-alpha.1', 'v1.0.0-alpha.1'], ['v1.0.0-alpha.beta', 'v1.0.0-alpha.beta'],
  ['v1.0.0-beta', 'v1.0.0-beta'], ['v1.0.0-beta.2', 'v1.0.0-beta.2'], ['v1.0.0-beta.11', 'v1.0.0-beta.11'],
  ['v1.0.0-rc.1', 'v1.0.0-rc.1'], ['v1', 'v1.0.0'], ['v1.0', 'v1.0.0'], ['v1.0.0', 'v1.0.0'], ['v1.2', 'v1.2.0'],
  ['v1.2.0', 'v1.2.0'], ['v1.2.3-456', 'v1.2.3-456'], ['v1.2.3-456.789', 'v1.2.3-456.789'],
  ['v1.2.3-456-789', 'v1.2.3-456-789'], ['v1.2.3-456a', 'v1.2.3-456a'], ['v1.2.3-pre', 'v1.2.3-pre'],
  ['v1.2.3-pre+meta', 'v1.2.3-pre'], ['v1.2.3-pre.1', 'v1.2.3-pre.1'], ['v1.2.3-zzz', 'v1.2.3-zzz'],
  ['v1.2.3', 'v1.2.3'], ['v1.2.3+meta', 'v1.2.3'], ['v1.2.3+meta-pre', 'v1.2.3'],
  ['v1.2.3+meta-pre.sha.256a', 'v1.2.3'],
  // More invalid forms.
  ['', ''], ['1.2.3', ''], ['V1.2.3', ''], ['v01.2.3', ''], ['v1.02.3', ''], ['v1.2.3.4', ''], ['v1.2.3-', ''],
  ['v1.2.3+', ''], ['v1.2.3-01', ''], ['v1.2.3-a..b', ''], ['v1.2.3-a+b..c', ''], ['v1.2.3-a_b', ''],
  ['v1.2.3-0', 'v1.2.3-0'], ['v1.2.3-0a', 'v1.2.3-0a'], ['v1.2.3+01', 'v1.2.3'],
];

describe('semver (x/mod semver and module.CanonicalVersion)', () => {
  test.each(semverTests)('%j canonical %j', (v, canonical) => {
    expect(isValidSemver(v)).toBe(canonical !== '');
    expect(canonicalVersion(v)).toBe(canonical);
    expect(isCanonicalVersion(v)).toBe(canonical !== '' && canonical === v);
  });

  test.each([
    ['v1.2.3+incompatible', true],
    ['v3.0.0+incompatible', true],
    ['v1.2.3-pre+incompatible', true],
    ['v1.2+incompatible', false],
    ['v1.2.3+incompatible.1', false],
    ['v0.0.0-20240101000000-abcdefabcdef', true],
    ['v1.2.4-0.20240101000000-abcdefabcdef', true],
    ['master', false],
    ['v1.2', false],
  ])('isCanonicalVersion(%j) = %s', (v, want) => {
    expect(isCanonicalVersion(v)).toBe(want);
  });
});

/** Module paths built from valid-looking pieces; filtered to the valid ones. */
const validModulePath = fc
  .tuple(
    fc.stringMatching(/^[a-z0-9]{1,8}(\.[a-z0-9-]{1,8}){1,3}$/),
    fc.array(fc.stringMatching(/^[A-Za-z0-9._~-]{1,10}$/), { maxLength: 4 }),
  )
  .map(([first, rest]) => [first, ...rest].join('/'))
  .filter((p) => checkModulePath(p) === undefined);

const validVersion = fc
  .oneof(
    fc.stringMatching(/^v(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})(-[0-9A-Za-z.-]{1,20})?(\+incompatible)?$/),
    fc.stringMatching(/^[A-Za-z0-9 #$%&()+,.=@[\]^_{}~-]{1,20}$/),
  )
  .filter((v) => checkVersion(v) === undefined);

describe('properties', () => {
  test('escapePath and unescapePath round-trip valid paths; the escaped form has no upper case', () => {
    fc.assert(
      fc.property(validModulePath, (p) => {
        const escaped = escapePath(p);
        expect(escaped).toMatch(/^[a-z0-9._~/!-]+$/);
        expect(unescapePath(escaped ?? '')).toBe(p);
      }),
    );
  });

  test('escapeVersion and unescapeVersion round-trip valid versions', () => {
    fc.assert(
      fc.property(validVersion, (v) => {
        const escaped = escapeVersion(v);
        expect(escaped).toBeDefined();
        expect(escaped).not.toMatch(/[A-Z]/);
        expect(unescapeVersion(escaped ?? '')).toBe(v);
      }),
    );
  });

  test('unescape(escape(x)) is the identity on every string escape accepts, and nothing throws', () => {
    const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.stringMatching(/^[a-zA-Z.!/~0-9-]{0,20}$/));
    fc.assert(
      fc.property(anyString, (s) => {
        const p = escapePath(s);
        if (p !== undefined) expect(unescapePath(p)).toBe(s);
        const v = escapeVersion(s);
        if (v !== undefined) expect(unescapeVersion(v)).toBe(s);
        const u = unescapePath(s);
        if (u !== undefined) expect(escapePath(u)).toBe(s);
        const w = unescapeVersion(s);
        if (w !== undefined) expect(escapeVersion(w)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });
});
