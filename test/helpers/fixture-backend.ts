// Test helper: a real module backend on a real socket (port 0) serving the
// fixture modules in three layouts from the same data: the standard GOPROXY
// layout at `/` and under `/api/go/repo/`, and the internal cache layout under
// `/v1/modules/`. Owns routing, content types, ETags, request recording and
// fault injection; must not import from src/ (it is the reference the proxy is
// tested against, so it keeps its own tiny case-escaping).
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixtureModules, type FixtureModule } from './fixture-modules.js';
import { makeModuleZip } from './modzip.js';

/** One request as the backend received it. */
export interface RecordedRequest {
  method: string;
  /** The request target, percent-decoded once (`%21` -> `!`; `+` stays `+`). */
  path: string;
  headers: IncomingHttpHeaders;
}

/** What a test controls and observes about a running fixture backend. */
export interface FixtureBackend {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  /** Every request, in arrival order (recorded before any delay or failure). */
  requests: RecordedRequest[];
  /** Number of recorded requests whose decoded path equals `path` exactly. */
  count(path: string): number;
  /** Forgets the recorded requests. */
  reset(): void;
  /** Delays every later response by `ms` milliseconds (0: none). */
  setDelayMs(ms: number): void;
  /** `500`: answer every request 500; `reset`: destroy the socket; `none`: serve normally. */
  setFailure(mode: 'none' | '500' | 'reset'): void;
  /** Stops listening and destroys every open socket. */
  close(): Promise<void>;
  /** The exact zip bytes served for `module@version` (real case); throws if unknown. */
  zip(module: string, version: string): Buffer;
}

/** Options of {@link startFixtureBackend}. */
export interface FixtureBackendOptions {
  /** Modules to serve; default {@link fixtureModules}(). */
  modules?: FixtureModule[];
  /** Address to listen on; default `127.0.0.1`. The port is always 0 (chosen by the OS). */
  host?: string;
}

/** The `/api/go/repo/` prefix under which the standard layout is served again. */
export const STANDARD_PREFIX = '/api/go/repo';
/** The prefix of the internal layout. */
export const INTERNAL_PREFIX = '/v1/modules';

/** Case-encodes a module path or version the way the go command does (`A` -> `!a`). */
export function escapeCase(s: string): string {
  return s.replace(/[A-Z]/g, (c) => '!' + c.toLowerCase());
}

// golang.org/x/mod/module pseudoVersionRE.
const PSEUDO_RE = /^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

interface Served {
  info: Buffer;
  mod: Buffer;
  zip: Buffer;
  etag: string;
}

interface ServedModule {
  list: Buffer;
  latest: Buffer | undefined;
  /** By escaped version. */
  versions: Map<string, Served>;
}

type Resource = { kind: 'list' | 'latest'; module: string } | { kind: 'info' | 'mod' | 'zip'; module: string; version: string };

/** Starts a backend on port 0 and resolves once it listens. */
export async function startFixtureBackend(opts: FixtureBackendOptions = {}): Promise<FixtureBackend> {
  const modules = buildIndex(opts.modules ?? fixtureModules());
  const host = opts.host ?? '127.0.0.1';
  const requests: RecordedRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let delayMs = 0;
  let failure: 'none' | '500' | 'reset' = 'none';

  const respond = (req: IncomingMessage, res: ServerResponse, path: string): void => {
    if (failure === 'reset') {
      req.socket.destroy();
      return;
    }
    if (failure === '500') {
      send(res, req, 500, 'text/plain; charset=utf-8', Buffer.from('fixture backend: injected failure\n'));
      return;
    }
    serve(modules, req, res, path);
  };

  const server = createServer((req, res) => {
    const path = decodeOnce(req.url ?? '/');
    requests.push({ method: req.method ?? '', path, headers: req.headers });
    if (delayMs <= 0) {
      respond(req, res, path);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      respond(req, res, path);
    }, delayMs);
    timers.add(timer);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    requests,
    count: (path) => requests.filter((r) => r.path === path).length,
    reset: () => {
      requests.length = 0;
    },
    setDelayMs: (ms) => {
      delayMs = ms;
    },
    setFailure: (mode) => {
      failure = mode;
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    zip: (module, version) => {
      const served = modules.get(escapeCase(module))?.versions.get(escapeCase(version));
      if (!served) throw new Error(`fixture backend: no zip for ${module}@${version}`);
      return served.zip;
    },
  };
}

function buildIndex(list: FixtureModule[]): Map<string, ServedModule> {
  const index = new Map<string, ServedModule>();
  for (const m of list) {
    const versions = new Map<string, Served>();
    let latest: Buffer | undefined;
    for (const v of m.versions) {
      const info = Buffer.from(JSON.stringify({ Version: v.version, Time: v.time }) + '\n');
      const goMod = v.goMod ?? `module ${m.path}\n`;
      const files = v.goMod === null ? v.files : { ...v.files, 'go.mod': v.goMod };
      const zip = makeModuleZip(m.path, v.version, files);
      const etag = `"sha256-${createHash('sha256').update(zip).digest('hex').slice(0, 16)}"`;
      versions.set(escapeCase(v.version), { info, mod: Buffer.from(goMod), zip, etag });
      if (v.version === m.latest) latest = info;
    }
    if (m.latest !== undefined && !latest) throw new Error(`fixture backend: ${m.path} latest ${m.latest} is not one of its versions`);
    const lines = m.list ?? m.versions.map((v) => v.version).filter((v) => !PSEUDO_RE.test(v));
    const list = Buffer.from(lines.map((l) => l + '\n').join(''));
    index.set(escapeCase(m.path), { list, latest, versions });
  }
  return index;
}

function decodeOnce(target: string): string {
  try {
    return decodeURIComponent(target);
  } catch {
    return target; // malformed escapes: keep as received, routing will 404
  }
}

/** Maps a decoded path (query stripped) to a resource in any of the three layouts. */
function route(path: string): Resource | undefined {
  if (path.startsWith(INTERNAL_PREFIX + '/')) {
    const rest = path.slice(INTERNAL_PREFIX.length + 1);
    const file = /^(.+)\/versions\/([^/]+)\/(info|mod|zip)$/.exec(rest);
    if (file) return { kind: file[3] as 'info' | 'mod' | 'zip', module: file[1]!, version: file[2]! };
    const mod = /^(.+)\/(list|latest)$/.exec(rest);
    if (mod) return { kind: mod[2] as 'list' | 'latest', module: mod[1]! };
    return undefined;
  }
  const standard = path.startsWith(STANDARD_PREFIX + '/') ? path.slice(STANDARD_PREFIX.length) : path;
  const file = /^\/(.+)\/@v\/([^/]+)\.(info|mod|zip)$/.exec(standard);
  if (file) return { kind: file[3] as 'info' | 'mod' | 'zip', module: file[1]!, version: file[2]! };
  const list = /^\/(.+)\/@v\/list$/.exec(standard);
  if (list) return { kind: 'list', module: list[1]! };
  const latest = /^\/(.+)\/@latest$/.exec(standard);
  if (latest) return { kind: 'latest', module: latest[1]! };
  return undefined;
}

function serve(modules: Map<string, ServedModule>, req: IncomingMessage, res: ServerResponse, path: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, req, 405, 'text/plain; charset=utf-8', Buffer.from(`method not allowed: ${req.method}\n`));
    return;
  }
  const resource = route(decodeOnce(req.url?.split('?')[0] ?? '/'));
  const mod = resource && modules.get(resource.module);
  const notFound = (): void => send(res, req, 404, 'text/plain; charset=utf-8', Buffer.from(`not found: ${path}\n`));
  if (!resource || !mod) return notFound();
  switch (resource.kind) {
    case 'list':
      return send(res, req, 200, 'text/plain; charset=utf-8', mod.list);
    case 'latest':
      return mod.latest ? send(res, req, 200, 'application/json', mod.latest) : notFound();
    default: {
      const v = mod.versions.get(resource.version);
      if (!v) return notFound();
      if (resource.kind === 'info') return send(res, req, 200, 'application/json', v.info);
      if (resource.kind === 'mod') return send(res, req, 200, 'text/plain; charset=utf-8', v.mod);
      res.setHeader('ETag', v.etag);
      // A revalidating client gets a 304; the go command itself never sends If-None-Match.
      if (req.headers['if-none-match'] === v.etag) {
        res.writeHead(304).end();
        return;
      }
      return send(res, req, 200, 'application/zip', v.zip);
    }
  }
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, body: Buffer): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}
