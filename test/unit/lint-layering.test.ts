// The layering in eslint.config.js fires: a planted wrong import in a file of
// each layer is an error of no-restricted-imports (so `npm test`, which runs
// the lint, fails), and the imports each layer needs pass. Uses ESLint's API
// with the repository's config on virtual files (nothing is written).
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport const _x = 1;\n`, { filePath: `${ROOT}${filePath}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports' || m.ruleId === 'no-restricted-globals').map((m) => m.message);
}

test.each([
  ['src/goproxy/planted.ts', "import { readFile } from 'node:fs/promises';", 'pure module: no I/O'],
  ['src/goproxy/planted.ts', "import { compileRewriter } from '../rewrite/rules.js';", 'goproxy/ is the protocol'],
  ['src/rewrite/planted.ts', "import { createUpstream } from '../upstream/forward.js';", 'rewrite/ is pure'],
  ['src/status.ts', "import { createLogger } from './log.js';", 'pure module'],
  ['src/cache/planted.ts', "import { createUpstream } from '../upstream/forward.js';", 'cache/ knows no upstream'],
  ['src/cache/planted.ts', "import { startServer } from '../server.js';", 'cache/: process wiring'],
  ['src/cache/planted.ts', "import type { UpstreamResponse } from '../upstream/forward.js';", 'cache/ knows no upstream'],
  ['src/cache/store.ts', "import { readFile } from 'node:fs/promises';", 'no I/O here'],
  ['src/tls/certs.ts', "import { readFile } from 'node:fs/promises';", 'no I/O here'],
  ['src/rewrite/planted.ts', 'export const pid = process.pid;', 'pure module: pass values in'],
  ['src/tls/planted.ts', "import { createHandler } from '../handler.js';", 'tls/ knows no requests'],
  ['src/tls/planted.ts', "import http from 'node:http';", 'no I/O here'],
  ['src/handler.ts', "import { startServer } from './server.js';", 'handler.ts: process wiring'],
  ['src/handler.ts', "import { drain } from './server/drain.js';", 'handler.ts: process wiring'],
  ['src/handler.ts', "import { createNotifier } from './systemd/notify.js';", 'handler.ts: process wiring'],
  ['src/handler.ts', "import { loadConfig } from './config/load.js';", 'handler.ts: process wiring'],
  ['src/handler.ts', 'export const pid = process.pid;', 'handler.ts: process wiring is server.ts'],
  ['src/runtime.ts', "import { CacheStore } from './cache/store.js';", 'runtime.ts holds what a reload swaps'],
  ['src/metrics.ts', "import { createHandler } from './handler.js';", 'metrics.ts only defines metrics'],
  ['src/admin.ts', "import { RuntimeRef } from './runtime.js';", 'admin.ts answers from what AdminDeps hands it'],
  ['src/server/planted.ts', "import { serveCommand } from '../cli/serve.js';", 'the server is started by the CLI'],
  ['src/server.ts', "import { Command } from 'commander';", 'command-line code lives in src/cli/'],
  ['src/handler.ts', "import { Pool } from 'undici';", 'only src/upstream/forward.ts imports undici'],
  ['src/upstream/chain.ts', "import { Pool } from 'undici';", 'only src/upstream/forward.ts imports undici'],
  ['src/upstream/route.ts', "import { readFileSync } from 'node:fs';", 'pure module: no I/O'],
  ['src/upstream/chain.ts', "import type { Metrics } from '../metrics.js';", 'upstream/ is the backend chain'],
  ['src/newfolder/planted.ts', "import { Command } from 'commander';", 'command-line code lives in src/cli/'],
  ['src/newfolder/planted.ts', "import { serveCommand } from '../cli/serve.js';", 'nothing below it imports it'],
])('%s: `%s` is refused (%s)', async (file, code, why) => {
  const messages = await restricted(file, code);
  expect(messages).toHaveLength(1);
  expect(messages[0]).toContain(why);
});

test.each([
  ['src/goproxy/planted.ts', "import { gprError } from '../errors.js';"],
  ['src/cache/planted.ts', "import { open } from 'node:fs/promises';"],
  ['src/tls/certs.ts', "import { createSecureContext } from 'node:tls';"],
  ['src/handler.ts', "import { errorStatus } from './status.js';"],
  ['src/server/planted.ts', "import { createHandler } from '../handler.js';"],
  ['src/cli/planted.ts', "import { Command } from 'commander';\nimport { startServer } from '../server.js';"],
  ['src/upstream/forward.ts', "import { Pool } from 'undici';"],
  ['src/upstream/chain.ts', "import { compileRewriter } from '../rewrite/rules.js';"],
  ['src/upstream/route.ts', "import { matchPrefixPatterns } from '../goproxy/private.js';"],
])('%s: `%s` is allowed', async (file, code) => {
  expect(await restricted(file, code)).toEqual([]);
});
