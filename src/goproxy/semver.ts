/**
 * @module goproxy/semver
 * Go's semantic versions: which strings are valid, and which are canonical,
 * with the rules of golang.org/x/mod `semver/semver.go` and
 * `module.CanonicalVersion` (the "v" prefix is required; "v1" and "v1.2" are
 * valid shorthands but not canonical; build metadata is dropped, except the
 * special "+incompatible").
 * Must not: compare or sort versions (nothing here needs it), do I/O, throw.
 */

/** The parts of a valid version; `short` is what Canonical appends (".0.0", ".0" or ""). */
interface Semver {
  short: string;
  prerelease: string;
  build: string;
}

const NUM = '(0|[1-9][0-9]*)';
const IDENT = '[0-9A-Za-z-]+';
// A numeric prerelease identifier must not have leading zeros; build identifiers may.
const PRE_IDENT = `(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)`;
const SEMVER = new RegExp(
  `^v${NUM}(?:\\.${NUM}(?:\\.${NUM}(-${PRE_IDENT}(?:\\.${PRE_IDENT})*)?(\\+${IDENT}(?:\\.${IDENT})*)?)?)?$`,
);

function parseSemver(v: string): Semver | undefined {
  const m = SEMVER.exec(v);
  if (m === null) return undefined;
  const short = m[2] === undefined ? '.0.0' : m[3] === undefined ? '.0' : '';
  return { short, prerelease: m[4] ?? '', build: m[5] ?? '' };
}

/** x/mod `semver.IsValid`: "v1", "v1.2", "v1.2.3-pre+build" are valid; "1.2.3", "v1.2.3.4", "v01.2.3" are not. */
export function isValidSemver(v: string): boolean {
  return parseSemver(v) !== undefined;
}

/**
 * x/mod `module.CanonicalVersion`: the canonical form of `v`, or "" when `v` is
 * not a valid semantic version. Fills in ".0" parts and drops build metadata,
 * but keeps "+incompatible".
 */
export function canonicalVersion(v: string): string {
  const p = parseSemver(v);
  if (p === undefined) return '';
  if (p.short !== '') return v + p.short;
  const cv = v.slice(0, v.length - p.build.length);
  return p.build === '+incompatible' ? cv + p.build : cv;
}

/**
 * True when `v` is its own canonical form: release, pre-release and pseudo-versions
 * ("v1.2.3", "v1.0.0-RC1", "v0.0.0-20240101000000-abcdefabcdef") and
 * "+incompatible" ones. Objects named by a canonical version never change.
 */
export function isCanonicalVersion(v: string): boolean {
  return v !== '' && canonicalVersion(v) === v;
}
