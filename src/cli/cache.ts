/**
 * @module cli/cache
 * The `cache` subcommands: ls [MODULE], stats, purge MODULE[@VERSION]. Each
 * asks the running proxy through its admin listener (GET /cache, GET
 * /cache/stats, POST /cache/purge) and, when no proxy answers there, works on
 * `cache.dir` directly (the disk tier only; safe beside running processes:
 * a purge is an unlink of committed files).
 * Must not: start a server.
 */
import { Command } from 'commander';
import http from 'node:http';
import { escapeCase, keyMatcher, type ListedObject } from '../cache/cache.js';
import { DiskTier } from '../cache/disk.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

/** GET or POST `path` on the admin listener; undefined when nothing listens there. */
function askAdmin(config: Config, method: 'GET' | 'POST', path: string): Promise<unknown> {
  const admin = config.listen.admin;
  if (!admin) return Promise.resolve(undefined);
  const colon = admin.lastIndexOf(':');
  let host = admin.slice(0, colon).replace(/^\[|\]$/g, '');
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  const port = Number(admin.slice(colon + 1));
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return reject(new Error(`admin ${path}: ${res.statusCode} ${body.trim()}`));
        // An admin listener without cache routes (an older proxy) answers 404 above.
        resolve(JSON.parse(body) as unknown);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`admin ${host}:${port} did not answer within 30 s`)));
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? resolve(undefined) : reject(err)));
    req.end();
  });
}

async function openDir(config: Config): Promise<DiskTier> {
  if (!config.cache.dir) throw new Error('no proxy answers on the admin listener and cache.dir is null: nothing to look at');
  return new DiskTier({ dir: config.cache.dir, maxBytes: config.cache.diskMaxBytes });
}

function splitModule(arg: string): { module: string; version?: string } {
  const at = arg.lastIndexOf('@');
  return at > 0 ? { module: arg.slice(0, at), version: arg.slice(at + 1) } : { module: arg };
}

function query(module?: string, version?: string): string {
  const q = new URLSearchParams();
  if (module) q.set('module', module);
  if (version) q.set('version', version);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function printObjects(objects: ListedObject[], source: string): void {
  const lines = objects.map((o) => `${o.key.split(' ').join('\t')}\t${o.bytes}\t${o.tier}\n`);
  process.stdout.write(lines.join('') + `${objects.length} objects, ${objects.reduce((n, o) => n + o.bytes, 0)} bytes (${source})\n`);
}

export function cacheCommands(): Command {
  const cache = new Command('cache').description('look at and purge the cache (of the running proxy, or its cache.dir when it is stopped)');

  cache
    .command('ls')
    .description('list cached objects: kind, module, version, bytes, tier')
    .argument('[module]', 'only this module (real case, e.g. github.com/BurntSushi/toml)')
    .option('-c, --config <file>', 'JSON config file')
    .action(async (module: string | undefined, opts: { config?: string }) => {
      const config = await loadConfig(opts.config, process.env);
      const live = (await askAdmin(config, 'GET', `/cache${query(module)}`)) as ListedObject[] | undefined;
      if (live) return printObjects(live, `running proxy at ${config.listen.admin}`);
      const disk = await openDir(config);
      const match = module ? keyMatcher(module) : () => true;
      const objects = (await disk.scan()).filter((e) => match(e.key)).map((e): ListedObject => ({ key: e.key, tier: 'disk', bytes: e.bytes }));
      printObjects(objects.sort((a, b) => a.key.localeCompare(b.key)), `directory ${config.cache.dir}`);
    });

  cache
    .command('stats')
    .description('entries and bytes per tier (and request counts of a running proxy), as JSON')
    .option('-c, --config <file>', 'JSON config file')
    .action(async (opts: { config?: string }) => {
      const config = await loadConfig(opts.config, process.env);
      const live = await askAdmin(config, 'GET', '/cache/stats');
      if (live) return void process.stdout.write(`${JSON.stringify({ source: 'running proxy', ...(live as object) }, null, 2)}\n`);
      const disk = await openDir(config);
      const objects = await disk.scan();
      const stats = { source: 'directory', disk: { dir: config.cache.dir, entries: objects.length, bytes: objects.reduce((n, o) => n + o.bytes, 0), maxBytes: config.cache.diskMaxBytes } };
      process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
    });

  cache
    .command('purge')
    .description('remove MODULE (every version and list) or MODULE@VERSION; the next request fetches it again')
    .argument('<module>', 'MODULE or MODULE@VERSION (real case)')
    .option('-c, --config <file>', 'JSON config file')
    .action(async (arg: string, opts: { config?: string }) => {
      const config = await loadConfig(opts.config, process.env);
      const { module, version } = splitModule(arg);
      if (escapeCase(module).includes(' ')) throw new Error(`not a module path: ${module}`);
      const live = (await askAdmin(config, 'POST', `/cache/purge${query(module, version)}`)) as { removed: ListedObject[] } | undefined;
      const removed = live?.removed ?? (await (await openDir(config)).purge(keyMatcher(module, version))).map((e): ListedObject => ({ key: e.key, tier: 'disk', bytes: e.bytes }));
      process.stdout.write(`purged ${removed.length} objects (${removed.reduce((n, o) => n + o.bytes, 0)} bytes) of ${arg} from ${live ? `the running proxy at ${config.listen.admin}` : `directory ${config.cache.dir}`}\n`);
    });

  return cache;
}
