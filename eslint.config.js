// Lint rules that carry weight for this project: no unexplained `any`, and
// the layering of src/ (see ../shared/STYLE.md, issue 8): imports point down
// only, per folder. Each src file is in exactly one layer below, so a wrong
// import fails `npm run lint` (and so `npm test`);
// test/unit/lint-layering.test.ts plants bad imports to prove each rule fires.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const io = ['node:net', 'node:http', 'node:https', 'node:tls', 'node:fs', 'node:fs/promises', 'node:dgram', 'node:child_process'];

// Import groups, as gitignore-style patterns matched against the import text.
const g = {
  server: ['**/server.js', '**/server/*'],
  cli: ['**/cli/*', '**/main.js'],
  handler: ['**/handler.js'],
  admin: ['**/admin.js'],
  runtime: ['**/runtime.js'],
  metrics: ['**/metrics.js'],
  upstream: ['**/upstream/*'],
  cache: ['**/cache/*'],
  tls: ['**/tls/*'],
  systemd: ['**/systemd/*'],
  configLoad: ['**/config/load.js'],
  goproxy: ['**/goproxy/*'],
  rewrite: ['**/rewrite/*'],
  log: ['**/log.js'],
};

/**
 * The rule for one layer: `deny` lists [group name, why]; `pure` adds the
 * I/O modules; `typesOk` allows type-only imports of the denied groups.
 */
function layer(deny, { pure = false, noIo = [], typesOk = false, engineOk = false } = {}) {
  const ioBanned = pure ? io : noIo;
  return {
    ...(pure ? { 'no-restricted-globals': ['error', { name: 'process', message: 'pure module: pass values in' }] } : {}),
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: [
          ...(engineOk ? [] : [{ name: 'undici', message: 'only src/upstream/forward.ts imports undici (the forwarding engine)' }]),
          { name: 'commander', message: 'command-line code lives in src/cli/' },
          ...ioBanned.map((name) => ({ name, message: pure ? 'pure module: no I/O' : 'no I/O here', allowTypeImports: true })),
        ],
        patterns: deny.map(([group, why]) => ({ group: g[group], message: why, allowTypeImports: typesOk })),
      },
    ],
  };
}

const WIRING = 'process wiring (server, signals, systemd, CLI) is above this module';
const upstreamDeny = ['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'cache', 'tls', 'systemd', 'configLoad', 'log'].map((k) => [k, 'upstream/ is the backend chain: it knows no server, cache, logs or metrics (hooks are passed in)']);
const cacheDeny = [
  ...['upstream', 'rewrite'].map((k) => [k, 'cache/ knows no upstream: it is handed a body source, it does not fetch']),
  ...['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'tls', 'systemd', 'configLoad'].map((k) => [k, `cache/: ${WIRING}`]),
];
const tlsDeny = ['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'goproxy', 'rewrite', 'systemd', 'configLoad'].map((k) => [
  k,
  'tls/ knows no requests: it makes certificates and secure contexts',
]);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/', 'certs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Every src file, unless a layer below says more: no commander and no cli/ outside the command line.
  {
    files: ['src/**'],
    rules: layer([['cli', 'command-line code lives in src/cli/; nothing below it imports it']]),
  },
  // Pure: protocol parsing and rewriting know nothing but their inputs.
  {
    files: ['src/goproxy/**'],
    rules: layer(
      ['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'tls', 'systemd', 'configLoad', 'rewrite', 'log'].map((k) => [k, 'goproxy/ is the protocol: pure, it imports only goproxy/ and errors']),
      { pure: true },
    ),
  },
  {
    files: ['src/rewrite/**'],
    rules: layer(
      ['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'tls', 'systemd', 'configLoad', 'log'].map((k) => [k, 'rewrite/ is pure: parsed request + config in, backend path out']),
      { pure: true },
    ),
  },
  {
    files: ['src/errors.ts', 'src/status.ts', 'src/config/schema.ts', 'src/systemd/listen-fds.ts', 'src/tls/x509.ts', 'src/cache/http.ts'],
    rules: layer(
      ['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'configLoad', 'log'].map((k) => [k, 'pure module: it may import only other pure modules']),
      { pure: true },
    ),
  },
  // The cache is fed an abstract body source: it knows no upstream (not even its types) and no process wiring.
  {
    files: ['src/cache/**'],
    ignores: ['src/cache/http.ts', 'src/cache/store.ts'],
    rules: layer(cacheDeny, { noIo: ['node:http', 'node:https', 'node:net', 'node:tls', 'node:dgram'] }),
  },
  // State without I/O: the memory tier.
  {
    files: ['src/cache/store.ts'],
    rules: layer(cacheDeny, { noIo: io }),
  },
  // TLS knows no requests: certificates and contexts only.
  {
    files: ['src/tls/**'],
    ignores: ['src/tls/x509.ts', 'src/tls/certs.ts'],
    rules: layer(tlsDeny, { noIo: ['node:http', 'node:https', 'node:net', 'node:dgram', 'node:child_process'] }),
  },
  // State without I/O: may build TLS contexts, may not touch files or sockets.
  {
    files: ['src/tls/certs.ts'],
    rules: layer(tlsDeny, { noIo: io.filter((m) => m !== 'node:tls') }),
  },
  // The backend chain: it walks entries (rewrite/ per entry) and matches private
  // patterns (goproxy/); only forward.ts imports the forwarding engine.
  {
    files: ['src/upstream/**'],
    ignores: ['src/upstream/forward.ts', 'src/upstream/route.ts', 'src/upstream/health.ts', 'src/upstream/redact.ts'],
    rules: layer(upstreamDeny),
  },
  {
    files: ['src/upstream/forward.ts'],
    rules: layer(upstreamDeny, { engineOk: true }),
  },
  // Pure parts of upstream/: the per-request decision, health state, config redaction.
  {
    files: ['src/upstream/route.ts', 'src/upstream/health.ts', 'src/upstream/redact.ts'],
    rules: layer(upstreamDeny, { pure: true }),
  },
  {
    files: ['src/systemd/**'],
    ignores: ['src/systemd/listen-fds.ts'],
    rules: layer(['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'tls', 'goproxy', 'rewrite', 'configLoad'].map((k) => [k, 'systemd/ speaks to systemd only'])),
  },
  {
    files: ['src/config/load.ts', 'src/log.ts'],
    rules: layer(['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'tls', 'systemd', 'goproxy', 'rewrite'].map((k) => [k, 'config loading and logging sit below everything that uses them'])),
  },
  // The handler serves one request: it never reaches into process wiring.
  {
    files: ['src/handler.ts'],
    rules: {
      ...layer(
        ['server', 'cli', 'systemd', 'configLoad', 'admin', 'tls'].map((k) => [k, `handler.ts: ${WIRING}; it gets what it needs in HandlerDeps`]),
        { noIo: ['node:net', 'node:fs', 'node:fs/promises', 'node:child_process', 'node:dgram'] },
      ),
      'no-restricted-globals': ['error', { name: 'process', message: 'handler.ts: process wiring is server.ts; pass values in HandlerDeps' }],
    },
  },
  // runtime.ts: what a reload swaps (config, rules, backend client, TLS material); no listeners, no cache.
  {
    files: ['src/runtime.ts'],
    rules: layer(['server', 'cli', 'handler', 'admin', 'metrics', 'cache', 'systemd', 'configLoad'].map((k) => [k, 'runtime.ts holds what a reload swaps; it knows no server, cache or metrics'])),
  },
  // metrics.ts: counters and gauges; reads the cache store's numbers (a type), serves nothing.
  {
    files: ['src/metrics.ts'],
    rules: layer(
      ['server', 'cli', 'handler', 'admin', 'runtime', 'upstream', 'tls', 'systemd', 'configLoad'].map((k) => [k, 'metrics.ts only defines metrics']),
      { noIo: io, typesOk: true },
    ),
  },
  // admin.ts: /healthz, /readyz, /metrics over what it is handed.
  {
    files: ['src/admin.ts'],
    rules: layer(
      ['server', 'cli', 'handler', 'runtime', 'upstream', 'cache', 'tls', 'systemd', 'configLoad'].map((k) => [k, 'admin.ts answers from what AdminDeps hands it (type imports only)']),
      { typesOk: true },
    ),
  },
  // doctor/: checks a running proxy from outside, through its sockets and the go command; it reads the config only.
  {
    files: ['src/doctor/**'],
    rules: layer(['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'systemd'].map((k) => [k, 'doctor/ checks the proxy from outside; it shares no code with the server'])),
  },
  // The config watch notices changes; the server's reload applies them.
  {
    files: ['src/config/watch.ts'],
    rules: layer(['server', 'cli', 'handler', 'admin', 'runtime', 'metrics', 'upstream', 'cache', 'tls', 'systemd', 'goproxy', 'rewrite', 'log'].map((k) => [k, 'config/watch.ts only notices changes; server/reload.ts applies them'])),
  },
  // Process wiring: may use every layer below, never the CLI.
  {
    files: ['src/server.ts', 'src/server/**'],
    rules: layer([['cli', 'the server is started by the CLI, not the other way round']]),
  },
  // The command line: the top. Only here commander, and process.exit in main.ts.
  {
    files: ['src/cli/**', 'src/main.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { paths: [{ name: 'undici', message: 'only src/upstream/forward.ts imports undici (the forwarding engine)' }] }] },
  },
);
