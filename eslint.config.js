// Lint rules that carry weight for this project: no unexplained `any`, and
// imports that point down the layers only (see ../shared/STYLE.md).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const io = ['node:net', 'node:http', 'node:https', 'node:tls', 'node:fs', 'node:fs/promises', 'node:dgram', 'node:child_process'];

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
  {
    files: ['src/**'],
    ignores: ['src/upstream/forward.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [{ name: 'undici', message: 'only src/upstream/forward.ts imports undici (the forwarding engine)' }] }],
    },
  },
  {
    // The cache is fed an abstract body source: it never reaches into the upstream (issue 7).
    files: ['src/cache/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['**/upstream/*'], message: 'cache/ must not import upstream/: take a BodySource' }], paths: [{ name: 'http-proxy', message: 'only src/upstream/forward.ts imports http-proxy' }] }],
    },
  },
  {
    // Pure modules: no I/O, no environment.
    files: ['src/goproxy/**', 'src/rewrite/**', 'src/cache/http.ts', 'src/systemd/listen-fds.ts', 'src/config/schema.ts', 'src/tls/x509.ts', 'src/upstream/route.ts', 'src/upstream/health.ts', 'src/upstream/redact.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [...io.map((name) => ({ name, message: 'pure module: no I/O', allowTypeImports: true })), { name: 'undici', message: 'pure module: no I/O' }] }],
      'no-restricted-globals': ['error', { name: 'process', message: 'pure module: pass values in' }],
    },
  },
  {
    // State without I/O: may build TLS contexts, may not touch files or sockets.
    files: ['src/tls/certs.ts', 'src/cache/store.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [...io.filter((m) => m !== 'node:tls').map((name) => ({ name, message: 'no I/O here', allowTypeImports: true })), { name: 'undici', message: 'no I/O here' }] }],
    },
  },
);
