// Test helper: Go proxy request paths for the fixture modules (`.info` and
// `.mod` of every version, `list` of every module; no zips, so bodies are
// text), and the bodies the fixture backend serves for them, to compare a
// proxy's answers with. Must not: know anything about the proxy.
import { escapeCase, type FixtureBackend } from './fixture-backend.js';
import { fixtureModules } from './fixture-modules.js';
import { get } from './http-get.js';

/** A Go proxy request path, e.g. `/example.com/lib/@v/v1.0.0.info`; `mutable` for `list`. */
export interface ProxyPath {
  path: string;
  mutable: boolean;
}

/** Every `.info`, `.mod` and `list` path of the fixture modules, in a fixed order. */
export function fixturePaths(): ProxyPath[] {
  const paths: ProxyPath[] = [];
  for (const m of fixtureModules()) {
    const mod = escapeCase(m.path);
    for (const v of m.versions) {
      const version = escapeCase(v.version);
      paths.push({ path: `/${mod}/@v/${version}.info`, mutable: false }, { path: `/${mod}/@v/${version}.mod`, mutable: false });
    }
    paths.push({ path: `/${mod}/@v/list`, mutable: true });
  }
  return paths;
}

/**
 * The bodies `backend` serves for `paths` in the standard layout at its root,
 * fetched directly (call before injecting delays; then `backend.reset()`).
 */
export async function expectedBodies(backend: FixtureBackend, paths: readonly string[]): Promise<Map<string, string>> {
  const bodies = new Map<string, string>();
  for (const path of paths) {
    const got = await get(backend.url + path);
    if (got.status !== 200) throw new Error(`fixture backend answered ${got.status} for ${path}`);
    bodies.set(path, got.body.toString());
  }
  return bodies;
}
