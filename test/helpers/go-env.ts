// Test helper without vitest (bench/ uses it too): the hermetic environment
// for the real go command: fresh HOME, GOPATH, module and build caches,
// GOPROXY as given, no checksum database, none of the user's go settings.
// Must not run go or start servers (go.ts runs it).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An isolated go environment; see {@link goEnv}. */
export interface GoEnv {
  /** Environment for {@link runGo}. */
  env: NodeJS.ProcessEnv;
  /** Root directory holding HOME (`home/`), GOPATH (`gopath/`) and GOCACHE (`gocache/`). */
  dir: string;
  /** Removes `dir` (only when goEnv created it). */
  cleanup(): Promise<void>;
}

/** Options of {@link goEnv}. */
export interface GoEnvOptions {
  /** GOPROXY value, e.g. a fixture backend's URL. No `direct` is added. */
  goproxy: string;
  /**
   * An existing directory to use as the root instead of a new temp dir, e.g.
   * to share a module cache between two environments; cleanup leaves it.
   */
  home?: string;
}

// Variables that would route modules around the proxy, re-enable the checksum
// database, or read the user's own go configuration.
const DROPPED = ['GOPRIVATE', 'GONOPROXY', 'GONOSUMDB', 'GOINSECURE', 'GOWORK', 'GOENV', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME'];

/**
 * Creates a fresh temp HOME, GOPATH, GOMODCACHE and GOCACHE and the matching
 * environment: GOPROXY as given, GOSUMDB=off, GOFLAGS=-modcacherw (so cleanup
 * can delete the module cache), GOTOOLCHAIN=local, GO111MODULE=on,
 * CGO_ENABLED=0, GOWORK=off; PATH and the rest of process.env are kept.
 */
export async function goEnv(opts: GoEnvOptions): Promise<GoEnv> {
  const owned = opts.home === undefined;
  const dir = opts.home ?? (await mkdtemp(join(tmpdir(), 'gpr-go-')));
  const home = join(dir, 'home');
  const gopath = join(dir, 'gopath');
  await mkdir(home, { recursive: true });
  await mkdir(gopath, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of DROPPED) delete env[name];
  Object.assign(env, {
    HOME: home,
    GOPATH: gopath,
    GOMODCACHE: join(gopath, 'pkg', 'mod'),
    GOCACHE: join(dir, 'gocache'),
    // A file that does not exist: no `go env -w` settings from anywhere.
    GOENV: join(home, 'go-env'),
    GOPROXY: opts.goproxy,
    GOSUMDB: 'off',
    GOFLAGS: '-modcacherw',
    GOTOOLCHAIN: 'local',
    GO111MODULE: 'on',
    GOWORK: 'off',
    CGO_ENABLED: '0',
    GIT_TERMINAL_PROMPT: '0',
  });
  return {
    env,
    dir,
    cleanup: async () => {
      if (owned) await rm(dir, { recursive: true, force: true });
    },
  };
}
