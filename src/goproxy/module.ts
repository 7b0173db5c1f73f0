/**
 * @module goproxy/module
 * Module paths and versions as golang.org/x/mod `module/module.go` defines
 * them: `CheckPath` for module paths, the file-name element rules that
 * `EscapeVersion` applies to versions, and the case-encoding ("!"+lower for
 * each upper-case letter) that keeps proxy URLs and file names case-insensitive.
 * Functions return a reason string (or undefined) instead of throwing.
 * Must not: know about URLs, percent-encoding or proxy endpoints (see path.ts),
 * do I/O, throw.
 */

/** A decoded value, or the reason the input is invalid. */
export type Checked = { ok: true; value: string } | { ok: false; reason: string };

// Reserved file names on Windows, compared case-insensitively with the part of
// an element before its first dot (x/mod `badWindowsNames`).
const BAD_WINDOWS_NAMES = new Set([
  'CON', 'PRN', 'AUX', 'NUL',
  'COM1', 'COM2', 'COM3', 'COM4', 'COM5', 'COM6', 'COM7', 'COM8', 'COM9',
  'LPT1', 'LPT2', 'LPT3', 'LPT4', 'LPT5', 'LPT6', 'LPT7', 'LPT8', 'LPT9',
]);

// x/mod `modPathOK`: no '+' (it would change meaning in a URL), no Unicode yet.
const MOD_PATH_CHAR = /^[A-Za-z0-9._~-]$/;
// x/mod `firstPathOK`: the first element is a lower-case LDH domain name.
const FIRST_ELEM_CHAR = /^[a-z0-9.-]$/;
// x/mod `fileNameOK` restricted to ASCII (escaping refuses anything else anyway):
// letters, digits, space and !#$%&()+,-.=@[]^_{}~ (not " ' * / : ; < > ? \ ` |).
const FILE_NAME_CHAR = /^[A-Za-z0-9 !#$%&()+,\-.=@[\]^_{}~]$/;

/** `'c'` for printable ASCII, `U+XXXX` otherwise, so a reason is always safe to print. */
function showChar(c: string): string {
  const cp = c.codePointAt(0) ?? 0;
  return cp > 0x20 && cp < 0x7f ? `'${c}'` : `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** x/mod `checkElem` for a module path element (`file` false) or a file name such as a version (`file` true). */
function checkElem(elem: string, file: boolean): string | undefined {
  if (elem === '') return 'empty path element';
  if (/^\.+$/.test(elem)) return `invalid path element "${elem}"`;
  if (elem.startsWith('.') && !file) return 'leading dot in path element';
  if (elem.endsWith('.')) return 'trailing dot in path element';
  const charOK = file ? FILE_NAME_CHAR : MOD_PATH_CHAR;
  for (const c of elem) {
    if (!charOK.test(c)) return `invalid char ${showChar(c)}`;
  }
  const dot = elem.indexOf('.');
  const short = dot < 0 ? elem : elem.slice(0, dot);
  if (BAD_WINDOWS_NAMES.has(short.toUpperCase())) {
    return `"${short}" disallowed as path element component on Windows`;
  }
  // Windows 8.3 short names ("PROGRA~1") alias other directories; file names are exempt.
  if (!file && /~[0-9]+$/.test(short)) return 'trailing tilde and digits in path element';
  return undefined;
}

/**
 * x/mod `SplitPathVersion`'s validity check on the major-version suffix:
 * "/vN" needs N >= 2 without dots or leading zeros ("/v0", "/v1", "/v2.0" are
 * invalid); gopkg.in paths must end in ".vN" (or ".vN-unstable").
 */
function checkMajorSuffix(path: string): string | undefined {
  if (path.startsWith('gopkg.in/')) {
    const m = /\.v[0-9]*(?:-unstable)?$/.exec(path);
    if (m === null) return 'gopkg.in path must end in .vN';
    const major = m[0];
    // As x/mod: ".v" alone and leading zeros are refused, ".v0" is fine.
    if (major === '.v' || (major[2] === '0' && major !== '.v0')) return `invalid gopkg.in version suffix "${major}"`;
    return undefined;
  }
  const m = /\/v([0-9.]+)$/.exec(path);
  if (m === null) return undefined;
  const n = m[1] ?? '';
  if (n.includes('.') || n.startsWith('0') || n === '1') return `invalid major version suffix "/v${n}"`;
  return undefined;
}

/**
 * x/mod `module.CheckPath`: undefined when `path` is a valid module path, else
 * the reason ("leading slash", "empty path element", "invalid char '%'",
 * "missing dot in first path element", ...). No length limit of its own: the
 * request path limit (see path.ts) bounds it.
 */
export function checkModulePath(path: string): string | undefined {
  if (path === '') return 'empty string';
  if (path.startsWith('/')) return 'leading slash';
  if (path.startsWith('-')) return 'leading dash';
  if (path.includes('//')) return 'double slash';
  if (path.endsWith('/')) return 'trailing slash';
  for (const elem of path.split('/')) {
    const reason = checkElem(elem, false);
    if (reason !== undefined) return reason;
  }
  const first = path.split('/', 1)[0] ?? '';
  if (!first.includes('.')) return 'missing dot in first path element';
  for (const c of first) {
    if (!FIRST_ELEM_CHAR.test(c)) return `invalid char ${showChar(c)} in first path element`;
  }
  return checkMajorSuffix(path);
}

/**
 * The rules x/mod `EscapeVersion` applies: a version is a valid semantic
 * version or a query (branch, tag, commit hash) that is a safe file name
 * element: no "/", no "!", ASCII only, not "." or "..", no trailing dot, no
 * shell-special characters, no Windows-reserved name. Undefined when valid.
 */
export function checkVersion(v: string): string | undefined {
  if (v.includes('!')) return "invalid char '!'";
  return checkElem(v, true);
}

/** Replaces each upper-case ASCII letter with "!" and its lower case. */
function escapeString(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

/** Undoes {@link escapeString}, refusing anything it could not have produced. */
function unescapeString(escaped: string): Checked {
  let out = '';
  let bang = false;
  for (const c of escaped) {
    if (bang) {
      if (c < 'a' || c > 'z') return { ok: false, reason: "'!' must be followed by a lower-case letter" };
      out += c.toUpperCase();
      bang = false;
    } else if (c === '!') {
      bang = true;
    } else if (c >= 'A' && c <= 'Z') {
      return { ok: false, reason: `upper-case ${showChar(c)} must be escaped as '!${c.toLowerCase()}'` };
    } else if (c > '\x7e') {
      return { ok: false, reason: `invalid char ${showChar(c)}` };
    } else {
      out += c;
    }
  }
  return bang ? { ok: false, reason: "trailing '!'" } : { ok: true, value: out };
}

/** Like {@link unescapePath}, but says why `escaped` is invalid. */
export function decodeModulePath(escaped: string): Checked {
  const r = unescapeString(escaped);
  if (!r.ok) return r;
  const reason = checkModulePath(r.value);
  return reason === undefined ? r : { ok: false, reason };
}

/** Like {@link unescapeVersion}, but says why `escaped` is invalid. */
export function decodeVersion(escaped: string): Checked {
  const r = unescapeString(escaped);
  if (!r.ok) return r;
  const reason = checkVersion(r.value);
  return reason === undefined ? r : { ok: false, reason };
}

/** x/mod `module.EscapePath`: "github.com/BurntSushi/toml" -> "github.com/!burnt!sushi/toml"; undefined for an invalid path. */
export function escapePath(path: string): string | undefined {
  return checkModulePath(path) === undefined ? escapeString(path) : undefined;
}

/** x/mod `module.UnescapePath`: undefined for a bad encoding (raw upper case, "!!", trailing "!") or an invalid path. */
export function unescapePath(escaped: string): string | undefined {
  const r = decodeModulePath(escaped);
  return r.ok ? r.value : undefined;
}

/** x/mod `module.EscapeVersion`: "v1.0.0-RC1" -> "v1.0.0-!r!c1"; undefined for an invalid version. */
export function escapeVersion(v: string): string | undefined {
  return checkVersion(v) === undefined ? escapeString(v) : undefined;
}

/** x/mod `module.UnescapeVersion`: undefined for a bad encoding or an invalid version. */
export function unescapeVersion(escaped: string): string | undefined {
  const r = decodeVersion(escaped);
  return r.ok ? r.value : undefined;
}
