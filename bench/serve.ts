/**
 * @module bench/serve
 * Child-process entry of the benchmark's helper servers, so none of them
 * shares an event loop with autocannon (the proxy has its own loader-free
 * entry, bench/serve-proxy.mjs):
 *   node --import tsx bench/serve.ts backend               the fixture backend + bench modules
 *   node --import tsx bench/serve.ts minimal <spec.json>   node:http (or node:https) answering fixed bytes
 * Each listens on 127.0.0.1 port 0 and reports its URLs over the IPC channel
 * (`{ ready: {...} }`); `{ cmd: 'memory' }` answers process.memoryUsage()
 * after a GC when run with --expose-gc. Exits when the parent goes away.
 * Must not: send load or decide what is measured (bench/run.ts does).
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fixtureModules } from '../test/helpers/fixture-modules.js';
import { startFixtureBackend } from '../test/helpers/fixture-backend.js';
import { benchModules } from './scenarios.js';

/** What `minimal` answers to every request. */
export interface MinimalSpec {
  status: number;
  /** Response headers as the proxy sent them on a HIT (minus date/connection/keep-alive). */
  headers: Record<string, string>;
  /** File holding the body bytes. */
  bodyFile: string;
  /** Serve HTTPS with this PEM certificate and key (files), instead of plain HTTP. */
  tls?: { cert: string; key: string };
}

/** The IPC messages a child (this one or serve-proxy.mjs) sends. */
export type ChildMessage = { ready: Record<string, string> } | { memory: NodeJS.MemoryUsage } | { count: number; path: string };

/** Backend requests per path since the start (the backend: `{ cmd: 'count', path }`). */
const counts = new Map<string, number>();
let countNow: ((path: string) => number) | undefined;

function send(message: ChildMessage): void {
  process.send?.(message);
}

async function serveBackend(): Promise<void> {
  const backend = await startFixtureBackend({ modules: [...fixtureModules(), ...benchModules()] });
  // The helper records every request for tests; under load that is a leak:
  // fold them into counts per path and forget them.
  const fold = () => {
    for (const r of backend.requests) counts.set(r.path, (counts.get(r.path) ?? 0) + 1);
    backend.reset();
  };
  setInterval(fold, 500).unref();
  countNow = (path) => {
    fold();
    return counts.get(path) ?? 0;
  };
  send({ ready: { url: backend.url } });
}

async function serveMinimal(specPath: string): Promise<void> {
  const spec = JSON.parse(await readFile(specPath, 'utf8')) as MinimalSpec;
  const body = await readFile(spec.bodyFile);
  // Same server options as the proxy's listeners (src/server.ts).
  const options = { maxHeaderSize: 16 * 1024, keepAliveTimeout: 60_000, requestTimeout: 60_000 };
  const answer = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(spec.status, spec.headers);
    res.end(body);
  };
  const server = spec.tls
    ? https.createServer({ ...options, cert: await readFile(spec.tls.cert), key: await readFile(spec.tls.key), minVersion: 'TLSv1.2' }, answer)
    : http.createServer(options, answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  send({ ready: { url: `${spec.tls ? 'https' : 'http'}://127.0.0.1:${port}` } });
}

process.on('disconnect', () => process.exit(1));
process.on('message', (message: { cmd?: string; path?: string }) => {
  if (message.cmd === 'count' && message.path !== undefined) return send({ count: countNow?.(message.path) ?? 0, path: message.path });
  if (message.cmd !== 'memory') return;
  (globalThis as { gc?: () => void }).gc?.();
  send({ memory: process.memoryUsage() });
});

const [role, arg] = process.argv.slice(2);
const started = role === 'backend' ? serveBackend() : role === 'minimal' && arg ? serveMinimal(arg) : undefined;
if (!started) {
  process.stderr.write('usage: serve.ts backend | minimal <spec.json>\n');
  process.exit(2);
}
started.catch((err: unknown) => {
  process.stderr.write(`bench/serve ${role}: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
