/**
 * @module bench/scenarios
 * The one place for load parameters and scenario definitions: which object
 * each scenario requests, against which targets, with which proxy config, and
 * the bench-only fixture modules the backend serves besides fixtureModules().
 * Must not: start processes or send traffic (bench/run.ts does).
 */
import { xorshiftBytes, type FixtureModule } from '../test/helpers/fixture-modules.js';

/** Load parameters; `--duration`, `--warmup`, `--connections`, `--rounds` and `--workers` override them. */
export const load = {
  /** Measured seconds per target per round. */
  durationS: 8,
  /** Seconds of the same load before each measured run, results discarded. */
  warmupS: 2,
  /** Rounds per scenario; the table shows medians. Targets alternate: A B, then B A, ... */
  rounds: 3,
  /** Concurrent connections (autocannon, wrk) or concurrent handshake workers. */
  connections: 50,
  /** wrk threads (the zip scenarios). */
  wrkThreads: 2,
  /** One request in flight per connection: how the go command talks to a proxy. */
  pipelining: 1,
  /** Per-request timeout in seconds; a timed-out request counts as an error. */
  timeoutS: 10,
  /** coalesce-burst: concurrent requests for one cold zip. */
  burstRequests: 500,
  /** reload-under-load: SIGHUP every this many ms... */
  reloadEveryMs: 200,
  /** ...for this many seconds, under the hit-info load. */
  reloadForS: 10,
  /** Grace on top of the computed run time before the watchdog kills everything, ms. */
  watchdogSlackMs: 300_000,
} as const;

/** The TLS name the HTTPS targets are reached by (SNI and Host). */
export const TLS_NAME = 'proxy.golang.org';

/** Module of the `.info` HIT scenarios. */
export const HIT_MODULE = 'example.com/bench/hit';
/** Module of the 1 MiB `.zip` HIT scenarios. */
export const ZIP_MODULE = 'example.com/bench/zip';
/** Module with {@link MISS_VERSIONS} versions, cycled through by `miss-info`. */
export const MISS_MODULE = 'example.com/bench/miss';
/** Module of `coalesce-burst`: a cold 1 MiB zip per round and target ({@link BURST_VERSIONS} versions). */
export const BURST_MODULE = 'example.com/bench/burst';
export const BURST_VERSIONS = 8;
export const BURST_BLOB_BYTES = 1024 * 1024;
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

/** Memory tier of the proxy used by `hit-zip-disk`: too small for the 1 MiB zip, so the disk tier serves it. */
export const DISK_CACHE = { maxBytes: 256 * 1024, maxEntryBytes: 64 * 1024 } as const;

/**
 * Where a request goes:
 * - `proxy`, `proxy-https`: the proxy under test (plain and TLS listener)
 * - `proxy-miss`: a second proxy instance with {@link MISS_CACHE}
 * - `proxy-disk`: a third one with a disk tier and {@link DISK_CACHE}
 * - `nginx`, `nginx-https`: nginx doing the same rewrite with proxy_cache
 * - `nginx-nocache`: the same nginx rewrite, proxy_cache off
 * - `node-minimal`, `backend-direct`: references (a bare node:http server; the backend itself)
 */
export type TargetName = 'proxy' | 'proxy-https' | 'proxy-miss' | 'proxy-disk' | 'node-minimal' | 'nginx' | 'nginx-https' | 'nginx-nocache' | 'backend-direct';

/** What a scenario measures, and how. */
export type ScenarioRun =
  /** Keep-alive load for a fixed time: req/s, latency, CPU per request. */
  | 'load'
  /** A new TLS connection per request (bench/handshakes.ts). */
  | 'handshake'
  /** `load.burstRequests` concurrent GETs of one cold zip: backend requests, hashes, wall time. */
  | 'burst'
  /** The hit-info load while the server gets SIGHUP every `load.reloadEveryMs`: errors. */
  | 'reload'
  /** The real go command downloading the fixture set, cold then warm, HTTP and TLS: wall time. */
  | 'go'
  /** bench/fill-memory.ts (the disk tier's memory bound), run as its own process. */
  | 'external';

export interface Scenario {
  name: string;
  /** One line for the table and README. */
  summary: string;
  run: ScenarioRun;
  /** Load generator of a `load` scenario: wrk for large bodies (see bench/wrk.ts). */
  tool?: 'autocannon' | 'wrk';
  kind: 'info' | 'zip';
  module: string;
  /** `fixed`: always {@link BENCH_VERSION}; `cycle`: the next of {@link MISS_VERSIONS} per request. */
  versions: 'fixed' | 'cycle';
  /** Ours first, then nginx; the ratio is ours / nginx. */
  targets: [TargetName, ...TargetName[]];
  /** Request the object once on each caching target (and check it is a HIT) before measuring. */
  prime: boolean;
  /** The target for ours/nginx (higher is better), if it has one. */
  goal?: number;
}

export const scenarios: readonly Scenario[] = [
  { name: 'hit-info', summary: 'cached .info (HIT) over keep-alive HTTP', run: 'load', tool: 'autocannon', kind: 'info', module: HIT_MODULE, versions: 'fixed', targets: ['proxy', 'nginx'], prime: true, goal: 0.8 },
  { name: 'hit-info-tls', summary: 'cached .info (HIT) over keep-alive TLS', run: 'load', tool: 'autocannon', kind: 'info', module: HIT_MODULE, versions: 'fixed', targets: ['proxy-https', 'nginx-https'], prime: true, goal: 0.8 },
  { name: 'hit-zip-1m', summary: 'cached 1 MiB .zip from the memory tier (nginx: proxy_cache) over keep-alive HTTP, wrk', run: 'load', tool: 'wrk', kind: 'zip', module: ZIP_MODULE, versions: 'fixed', targets: ['proxy', 'nginx'], prime: true, goal: 0.9 },
  { name: 'hit-zip-disk', summary: 'cached 1 MiB .zip from the disk tier (memory tier too small) vs nginx proxy_cache, wrk', run: 'load', tool: 'wrk', kind: 'zip', module: ZIP_MODULE, versions: 'fixed', targets: ['proxy-disk', 'nginx'], prime: true, goal: 0.9 },
  { name: 'miss-info', summary: '.info MISS: every request a new object from the backend (nginx: proxy_cache off)', run: 'load', tool: 'autocannon', kind: 'info', module: MISS_MODULE, versions: 'cycle', targets: ['proxy-miss', 'nginx-nocache'], prime: false, goal: 0.6 },
  { name: 'tls-handshakes', summary: 'new TLS connection per request (full handshake + one cached .info)', run: 'handshake', kind: 'info', module: HIT_MODULE, versions: 'fixed', targets: ['proxy-https', 'nginx-https'], prime: true },
  { name: 'coalesce-burst', summary: '500 concurrent GETs of one cold 1 MiB zip: backend requests (goal 1), all sha256 equal', run: 'burst', kind: 'zip', module: BURST_MODULE, versions: 'fixed', targets: ['proxy', 'nginx'], prime: false },
  { name: 'reload-under-load', summary: 'hit-info load while SIGHUP arrives every 200 ms for 10 s: errors (goal 0)', run: 'reload', kind: 'info', module: HIT_MODULE, versions: 'fixed', targets: ['proxy', 'nginx'], prime: true },
  { name: 'go-mod-download', summary: 'the go command downloads the fixture set through a fresh server, cold then warm, HTTP and TLS: wall time', run: 'go', kind: 'zip', module: '', versions: 'fixed', targets: ['proxy', 'nginx'], prime: false, goal: 1 },
  { name: 'fill-memory', summary: 'bench/fill-memory.ts: peak RSS with 120 HEADs and 120 abandoned GETs of cold 50 MiB objects', run: 'external', kind: 'zip', module: '', versions: 'fixed', targets: ['proxy'], prime: false },
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
      path: BURST_MODULE,
      versions: Array.from({ length: BURST_VERSIONS }, (_, i) => ({
        version: `v1.0.${i}`,
        time: '2024-04-04T04:04:04Z',
        goMod: `module ${BURST_MODULE}\n\ngo 1.21\n`,
        files: { ...tiny(BURST_MODULE), 'blob.bin': xorshiftBytes(BURST_BLOB_BYTES, 0x1000 + i) },
      })),
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
