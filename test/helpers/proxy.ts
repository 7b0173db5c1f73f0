// Test helper: the proxy's own startServer() on port 0 with a config built
// from overrides, its pino lines captured as parsed objects (pino's sink()
// pattern), and cleanup registered with the calling test.
import { Writable } from 'node:stream';
import { onTestFinished } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { startServer, type ProxyServer, type StartOptions } from '../../src/server.js';

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface TestProxy {
  server: ProxyServer;
  /** http://127.0.0.1:PORT of the plain listener. */
  url: string;
  logs: LogLine[];
  /** Access lines only (msg "request"). */
  accessLines(): LogLine[];
}

/** Starts the proxy with `raw` config merged over test defaults (loopback port 0, no https, admin on port 0). */
export async function startTestProxy(raw: Record<string, unknown>, extra: Partial<StartOptions> = {}): Promise<TestProxy> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  // Memory only unless the test names a cache.dir: tests must not share a directory by accident.
  const cache = { dir: null, ...(raw.cache as Record<string, unknown> | undefined) };
  const config = parseConfig({ listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' }, ...raw, cache });
  const logger = createLogger({ level: 'debug', destination: sink });
  const server = await startServer({ config, logger, env: {}, ...extra });
  onTestFinished(() => server.close());
  return { server, url: server.url('http'), logs, accessLines: () => logs.filter((l) => l.msg === 'request') };
}

/** Resolves once `predicate` holds, polling every 5 ms for at most `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
