// Issue 8, lifecycle, against the compiled proxy as a child process: a
// SIGTERM during a slow 50 MiB cache hit waits for the response to finish
// SENDING (not just for end() to be called), then exits 0; a config path
// that became a FIFO fails a reload at once instead of hanging it, a later
// valid config applies, and SIGTERM still drains; a huge config is rejected
// unread.
import { createHash, randomBytes } from 'node:crypto';

/** Random bytes that start like a zip (the cache stores only zips that begin with a local file header). */
function zipLike(n: number): Buffer {
  const b = randomBytes(n);
  b.write('PK\x03\x04', 0, 'latin1');
  return b;
}
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { portOf, spawnProxy, tempDir, writeConfigAtomic, type ChildProxy } from '../helpers/child-proxy.js';
import { get } from '../helpers/http-get.js';

const BIG_PATH = '/example.com/big/@v/v1.0.0.zip';
const BIG_BYTES = 50 * 1024 * 1024;

/** A backend with one 50 MiB zip (a plain, well-behaved HTTP server). */
async function bigBackend(body: Buffer): Promise<string> {
  const server = http.createServer((req, res) => {
    if (req.url !== BIG_PATH) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())).then(() => undefined));
  onTestFinished(() => server.closeAllConnections());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function startProxy(config: Record<string, unknown>): Promise<{ proxy: ChildProxy; url: string; configPath: string; base: Record<string, unknown> }> {
  const dir = await tempDir('gpr-i8-');
  const configPath = join(dir, 'config.json');
  const base = { listen: { http: '127.0.0.1:0', https: null, admin: '127.0.0.1:0' }, rewrite: 'goproxy', ...config };
  await writeConfigAtomic(configPath, base);
  const proxy = spawnProxy({ configPath });
  const listening = await proxy.listening(2);
  return { proxy, url: `http://127.0.0.1:${portOf(listening.find((l) => l.role === 'http')!.address)}`, configPath, base };
}

/** GETs `url` reading at about `bytesPerSecond`; resolves with the body's hash and length. */
function slowGet(url: string, bytesPerSecond: number, onStarted: () => void): Promise<{ status: number; sha256: string; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      const started = Date.now();
      let told = false;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
        if (!told && length > bytesPerSecond / 2) {
          told = true;
          onStarted();
        }
        const ahead = (length / bytesPerSecond) * 1000 - (Date.now() - started);
        if (ahead > 5) {
          res.pause();
          setTimeout(() => res.resume(), ahead);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: hash.digest('hex'), length }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

test('SIGTERM during a 50 MiB HIT read at 5 MB/s: the download completes, then the process exits 0', { timeout: 60_000 }, async () => {
  const body = zipLike(BIG_BYTES);
  const expected = createHash('sha256').update(body).digest('hex');
  const upstream = await bigBackend(body);
  const { proxy, url } = await startProxy({ upstream, shutdown: { drainTimeoutMs: 30_000 }, cache: { maxBytes: 128 * 1024 * 1024, maxEntryBytes: 64 * 1024 * 1024 } });
  const fill = await get(url + BIG_PATH);
  expect(fill.status).toBe(200);
  expect(createHash('sha256').update(fill.body).digest('hex')).toBe(expected);

  let signalledAt = 0;
  const result = await slowGet(url + BIG_PATH, 5_000_000, () => {
    signalledAt = performance.now();
    proxy.signal('SIGTERM');
  });
  const readDoneAt = performance.now();
  expect(result).toEqual({ status: 200, sha256: expected, length: BIG_BYTES });
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
  // The read took ~10 s after the signal; the drain waited for it.
  expect(readDoneAt - signalledAt).toBeGreaterThan(6_000);
  const lines = proxy.logged('request').filter((l) => l.path === BIG_PATH);
  expect(lines.map((l) => ({ status: l.status, cache: l.cache, bytes: l.bytes, err: l.err }))).toEqual([
    { status: 200, cache: 'MISS', bytes: BIG_BYTES, err: null },
    { status: 200, cache: 'HIT', bytes: BIG_BYTES, err: null },
  ]);
  expect(proxy.lines.map((l) => l.msg)).not.toContain('drain timed out: closing the remaining connections');
  expect(proxy.lines.at(-1)?.msg).toBe('stopped');
});

test('a FIFO config fails the reload at once; a valid config then applies; SIGTERM still exits within the drain timeout', { timeout: 30_000 }, async () => {
  const { proxy, url, configPath, base } = await startProxy({ upstream: 'http://127.0.0.1:9', shutdown: { drainTimeoutMs: 3_000 } });
  await rm(configPath);
  execFileSync('mkfifo', [configPath]);
  const from = proxy.lines.length;
  const hupAt = performance.now();
  proxy.signal('SIGHUP');
  const failed = await proxy.waitFor((l) => l.msg === 'config reload failed', { from, timeoutMs: 10_000 });
  expect(performance.now() - hupAt).toBeLessThan(2_000);
  expect(failed.err).toMatchObject({ code: 'GPR_ERR_CONFIG_READ' });
  expect(String((failed.err as { message: string }).message)).toContain('not a regular file');

  await rm(configPath);
  await writeConfigAtomic(configPath, { ...base, upstream: 'http://127.0.0.1:7' });
  proxy.signal('SIGHUP');
  const reloaded = await proxy.waitFor((l) => l.msg === 'config reloaded', { from, timeoutMs: 10_000 });
  expect(reloaded).toMatchObject({ generation: 2, upstream: 'http://127.0.0.1:7' });
  expect((await get(`${url}/`)).status).toBe(404); // still serving

  const termAt = performance.now();
  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
  expect(performance.now() - termAt).toBeLessThan(3_000);
});

test('a config over 1 MiB is rejected with a clear error and the old config keeps serving', { timeout: 30_000 }, async () => {
  const { proxy, url, configPath, base } = await startProxy({ upstream: 'http://127.0.0.1:9' });
  // Valid JSON, padded with whitespace to 2 MiB.
  const text = JSON.stringify({ ...base, upstream: 'http://127.0.0.1:7' }) + ' '.repeat(2 * 1024 * 1024);
  await writeFile(configPath, text);
  const from = proxy.lines.length;
  proxy.signal('SIGHUP');
  const failed = await proxy.waitFor((l) => l.msg === 'config reload failed', { from });
  expect(failed.err).toMatchObject({ code: 'GPR_ERR_CONFIG_TOO_LARGE' });
  expect(String((failed.err as { message: string }).message)).toBe(`config file ${configPath} is ${text.length} bytes; the limit is 1048576 bytes (1 MiB)`);
  expect((await get(`${url}/`)).status).toBe(404);
  proxy.signal('SIGTERM');
  expect(await proxy.exited).toEqual({ code: 0, signal: null });
});
