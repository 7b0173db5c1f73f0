/**
 * @module bench/scenarios
 * The one place for load parameters and scenario definitions: which object
 * each scenario requests, against which targets, with which proxy config, and
 * the bench-only fixture modules the backend serves besides fixtureModules().
 * Must not: start processes or send traffic (bench/run.ts does).
 */
import { xorshiftBytes, type FixtureModule } from '../test/helpers/fixture-modules.js';

/** Load parameters; `--duration`, `--warmup` and `--connections` override the first three. */
export const load = {
  /** Measured seconds per target. */
  durationS: 10,
  /** Seconds of the same load before each measured run, results discarded. */
  warmupS: 2,
  /** Concurrent connections (autocannon) or concurrent handshake workers. */
  connections: 50,
  /** One request in flight per connection: how the go command talks to a proxy. */
  pipelining: 1,
  /** Per-request timeout in seconds; a timed-out request counts as an error. */
  timeoutS: 10,
  /** Grace on top of the computed run time before the watchdog kills everything, ms. */
  watchdogSlackMs: 90_000,
} as const;

/** The TLS name the HTTPS targets are reached by (SNI and Host). */
export const TLS_NAME = 'proxy.golang.org';

/** Module of the `.info` HIT scenarios. */
export const HIT_MODULE = 'example.com/bench/hit';
/** Module of the 1 MiB `.zip` HIT scenario. */
export const ZIP_MODULE = 'example.com/bench/zip';
/** Module with {@link MISS_VERSIONS} versions, cycled through by `miss-info`. */
export const MISS_MODULE = 'example.com/bench/miss';
export const BENCH_VERSION = 'v1.0.0';
/** Size of the incompressible file in the `.zip` scenario's module. */
export const ZIP_BLOB_BYTES = 1024 * 1024;
/**
 * Versions of {@link MISS_MODULE}: v1.0.0 ... v1.0.4095. Requests cycle
 * through them in order, so a version comes back only after 4095 others, far
 * more than {@link MISS_CACHE} holds: every request is a cache miss.
 */
export const MISS_VERSIONS = 4096;

/**
 * Cache bounds of the proxy used by `miss-info`: about 450 `.info` entries
 * (body + ENTRY_OVERHEAD_BYTES each), a tenth of the cycle. Caching stays on
 * (lookup, store, evict all happen), it just never gets to answer.
 */
export const MISS_CACHE = { maxBytes: 256 * 1024, maxEntryBytes: 64 * 1024 } as const;

/**
 * Where a request goes:
 * - `proxy`, `proxy-https`: the proxy under test (plain and TLS listener)
 * - `proxy-miss`: a second proxy instance with {@link MISS_CACHE}
 * - `node-minimal`: a bare node:http server answering the proxy's HIT bytes and headers
 * - `nginx`, `nginx-https`: nginx doing the same rewrite with proxy_cache
 * - `nginx-nocache`: the same nginx rewrite, proxy_cache off
 * - `backend-direct`: the fixture backend itself, internal layout paths
 */
export type TargetName = 'proxy' | 'proxy-https' | 'proxy-miss' | 'node-minimal' | 'nginx' | 'nginx-https' | 'nginx-nocache' | 'backend-direct';

export interface Scenario {
  name: string;
  /** One line for the table and README. */
  summary: string;
  kind: 'info' | 'zip';
  module: string;
  /** `fixed`: always {@link BENCH_VERSION}; `cycle`: the next of {@link MISS_VERSIONS} per request. */
  versions: 'fixed' | 'cycle';
  /** `keep-alive`: autocannon; `handshake`: a new TLS connection per request (bench/handshakes.ts). */
  transport: 'keep-alive' | 'handshake';
  /** First: the subject; the rest are baselines, each reported as subject/baseline. */
  targets: [TargetName, ...TargetName[]];
  /** Request the object once on each caching target (and check it is a HIT) before measuring. */
  prime: boolean;
}

export const scenarios: readonly Scenario[] = [
  {
    name: 'hit-info',
    summary: 'cached .info (HIT) over keep-alive HTTP',
    kind: 'info',
    module: HIT_MODULE,
    versions: 'fixed',
    transport: 'keep-alive',
    targets: ['proxy', 'node-minimal', 'nginx'],
    prime: true,
  },
  {
    name: 'hit-zip',
    summary: 'cached 1 MiB .zip (HIT) over keep-alive HTTP',
    kind: 'zip',
    module: ZIP_MODULE,
    versions: 'fixed',
    transport: 'keep-alive',
    targets: ['proxy', 'node-minimal', 'nginx'],
    prime: true,
  },
  {
    name: 'miss-info',
    summary: '.info MISS: every request a new object fetched from the backend',
    kind: 'info',
    module: MISS_MODULE,
    versions: 'cycle',
    transport: 'keep-alive',
    targets: ['proxy-miss', 'backend-direct', 'nginx-nocache'],
    prime: false,
  },
  {
    name: 'tls-hit-info',
    summary: 'cached .info (HIT) over keep-alive TLS, vs plain HTTP in the same run',
    kind: 'info',
    module: HIT_MODULE,
    versions: 'fixed',
    transport: 'keep-alive',
    targets: ['proxy-https', 'proxy', 'nginx-https'],
    prime: true,
  },
  {
    name: 'tls-handshakes',
    summary: 'new TLS connection per request (full handshake + one cached .info)',
    kind: 'info',
    module: HIT_MODULE,
    versions: 'fixed',
    transport: 'handshake',
    targets: ['proxy-https', 'nginx-https'],
    prime: true,
  },
];

/** The Go proxy path of `module@version`'s `kind` file (bench modules are lower case: no escaping). */
export function goProxyPath(module: string, version: string, kind: 'info' | 'zip'): string {
  return `/${module}/@v/${version}.${kind}`;
}

/** The backend's internal-layout path of the same file (what the proxy and nginx rewrite to). */
export function backendPath(module: string, version: string, kind: 'info' | 'zip'): string {
  return `/v1/modules/${module}/versions/${version}/${kind}`;
}

/** The `i`-th version of {@link MISS_MODULE}. */
export function missVersion(i: number): string {
  return `v1.0.${i % MISS_VERSIONS}`;
}

/** Seeded xorshift32 bytes: deflate cannot shrink them, so a 1 MiB blob makes a ~1 MiB zip. */
function incompressible(bytes: number): Buffer {
  return xorshiftBytes(bytes, 0x2545f491);
}

/** The modules the bench adds to fixtureModules(). */
export function benchModules(): FixtureModule[] {
  const tiny = (path: string) => ({ 'bench.go': `package bench\n\n// Path names this bench module.\nconst Path = "${path}"\n` });
  return [
    {
      path: HIT_MODULE,
      versions: [{ version: BENCH_VERSION, time: '2024-02-02T02:02:02Z', goMod: `module ${HIT_MODULE}\n\ngo 1.21\n`, files: tiny(HIT_MODULE) }],
    },
    {
      path: ZIP_MODULE,
      versions: [
        {
          version: BENCH_VERSION,
          time: '2024-02-02T02:02:02Z',
          goMod: `module ${ZIP_MODULE}\n\ngo 1.21\n`,
          files: { ...tiny(ZIP_MODULE), 'blob.bin': incompressible(ZIP_BLOB_BYTES) },
        },
      ],
    },
    {
      path: MISS_MODULE,
      versions: Array.from({ length: MISS_VERSIONS }, (_, i) => ({
        version: missVersion(i),
        time: '2024-03-03T03:03:03Z',
        goMod: `module ${MISS_MODULE}\n\ngo 1.21\n`,
        files: tiny(MISS_MODULE),
      })),
    },
  ];
}
