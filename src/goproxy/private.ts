/**
 * @module goproxy/private
 * GOPRIVATE pattern matching, a port of golang.org/x/mod `module.MatchPrefixPatterns`
 * and Go's `path.Match`: a comma-separated list of globs, each matched with
 * `path.Match` against as many leading path elements of the module path as
 * the glob has (`corp.example/*` matches `corp.example/x/y`). Pure.
 * Must not: do I/O, or decide what happens to a matching request (upstream/route.ts).
 */

/**
 * Reports whether any glob in the comma-separated `globs` matches a prefix of
 * `target` (a module path): x/mod MatchPrefixPatterns. Empty globs and a
 * trailing "/" are ignored; a malformed glob matches nothing.
 */
export function matchPrefixPatterns(globs: string, target: string): boolean {
  for (let glob of globs.split(',')) {
    if (glob.endsWith('/')) glob = glob.slice(0, -1);
    if (glob === '') continue;
    // A glob with N slashes is matched against the first N+1 elements of target.
    let n = 0;
    for (const c of glob) if (c === '/') n++;
    let prefix = target;
    for (let i = 0; i < target.length; i++) {
      if (target[i] === '/') {
        if (n === 0) {
          prefix = target.slice(0, i);
          break;
        }
        n--;
      }
    }
    if (n > 0) continue; // not enough elements
    if (pathMatch(glob, prefix) === true) return true;
  }
  return false;
}

/**
 * Checks that every glob of a comma-separated list is well formed, for
 * config validation. Returns the first malformed glob, or undefined.
 */
export function badPattern(globs: string): string | undefined {
  for (const glob of globs.split(',')) {
    // Matching against "" walks the whole pattern only up to the first
    // mismatch; a pattern is well formed when no element of it is malformed.
    if (glob !== '' && pathMatch(glob.replace(/\/$/, ''), '\u0000') === 'bad') return glob;
  }
  return undefined;
}

/**
 * Go's `path.Match(pattern, name)`: `*` any run of non-`/` characters, `?`
 * one non-`/` character, `[...]` a class (`^` negates, `a-z` ranges), `\`
 * escapes. Returns true, false, or 'bad' for ErrBadPattern.
 */
export function pathMatch(pattern: string, name: string): boolean | 'bad' {
  // Go 1.19 path.Match: the pattern is scanned in chunks separated by stars.
  let pat = pattern;
  let nm = name;
  pattern: while (pat.length > 0) {
    let star = false;
    while (pat.length > 0 && pat[0] === '*') {
      pat = pat.slice(1);
      star = true;
    }
    const { chunk, rest } = scanChunk(pat);
    pat = rest;
    if (star && chunk === '') {
      // Trailing * matches the rest unless it has a /.
      return !nm.includes('/');
    }
    // Look for a match at the current position.
    const t = matchChunk(chunk, nm);
    if (t === 'bad') return 'bad';
    // If we're the last chunk, make sure we've exhausted the name,
    // otherwise we'll give a false result even if we could still match
    // using the star.
    if (t !== undefined && (t.length === 0 || pat.length > 0)) {
      nm = t;
      continue;
    }
    if (star) {
      // Look for a match skipping i+1 bytes; cannot skip /.
      for (let i = 0; i < nm.length && nm[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, nm.slice(i + 1));
        if (t2 === 'bad') return 'bad';
        if (t2 !== undefined) {
          // if we're the last chunk, make sure we exhausted the name
          if (pat.length === 0 && t2.length > 0) continue;
          nm = t2;
          continue pattern;
        }
      }
    }
    // Before returning false, finish scanning the pattern for errors (Go 1.19+).
    while (pat.length > 0) {
      while (pat.length > 0 && pat[0] === '*') pat = pat.slice(1);
      const next = scanChunk(pat);
      pat = next.rest;
      if (matchChunk(next.chunk, '') === 'bad') return 'bad';
    }
    return false;
  }
  return nm.length === 0;
}

function scanChunk(pattern: string): { chunk: string; rest: string } {
  let inRange = false;
  let i = 0;
  scan: for (; i < pattern.length; i++) {
    switch (pattern[i]) {
      case '\\':
        if (i + 1 < pattern.length) i++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) break scan;
        break;
    }
  }
  return { chunk: pattern.slice(0, i), rest: pattern.slice(i) };
}

/**
 * Checks whether chunk matches the beginning of s; returns the remainder, or
 * undefined when it does not match, or 'bad' for a malformed chunk. Like Go's,
 * it keeps checking the chunk for errors after a mismatch.
 */
function matchChunk(chunk: string, s: string): string | undefined | 'bad' {
  let failed = false;
  let c = chunk;
  let str = s;
  while (c.length > 0) {
    if (!failed && str.length === 0) failed = true;
    switch (c[0]) {
      case '[': {
        let r = '';
        if (!failed) {
          r = str[0] as string;
          str = str.slice(1);
        }
        c = c.slice(1);
        let negated = false;
        if (c.length > 0 && c[0] === '^') {
          negated = true;
          c = c.slice(1);
        }
        let match = false;
        let nrange = 0;
        for (;;) {
          if (c.length > 0 && c[0] === ']' && nrange > 0) {
            c = c.slice(1);
            break;
          }
          const lo = getEsc(c);
          if (lo === 'bad') return 'bad';
          c = lo.rest;
          let hi = lo.ch;
          if (c[0] === '-') {
            const h = getEsc(c.slice(1));
            if (h === 'bad') return 'bad';
            c = h.rest;
            hi = h.ch;
          }
          if (lo.ch <= r && r <= hi) match = true;
          nrange++;
        }
        if (match === negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (str[0] === '/') failed = true;
          str = str.slice(1);
        }
        c = c.slice(1);
        break;
      case '\\':
        // An escaped character matches itself (Go falls through to default).
        c = c.slice(1);
        if (c.length === 0) return 'bad';
        if (!failed) {
          if (c[0] !== str[0]) failed = true;
          str = str.slice(1);
        }
        c = c.slice(1);
        break;
      default:
        if (!failed) {
          if (c[0] !== str[0]) failed = true;
          str = str.slice(1);
        }
        c = c.slice(1);
    }
  }
  return failed ? undefined : str;
}

function getEsc(chunk: string): { ch: string; rest: string } | 'bad' {
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') return 'bad';
  let c = chunk;
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c.length === 0) return 'bad';
  }
  const ch = c[0] as string;
  c = c.slice(1);
  if (c.length === 0) return 'bad';
  return { ch, rest: c };
}
