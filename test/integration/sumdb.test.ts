// The checksum database through the proxy, against a real one (golang.org/x/mod
// sumdb server built from the Go toolchain's vendored copy, fresh keys per
// run): the go command with GOSUMDB=<vkey> and GOPROXY at the proxy asks
// /sumdb/<name>/supported (answered here), then lookups and tiles through the
// proxy, and verifies every module; lookups and full tiles come from the
// cache on a second run; a tampered zip fails with the go command's checksum
// mismatch; names that are not configured get 404; an intercepted TLS
// connection to sum.golang.org (paths without /sumdb/<name>) is the same database.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { startFixtureBackend, type FixtureBackend, type FixtureBackendOptions } from '../helpers/fixture-backend.js';
import { allModuleVersions, fixtureModules } from '../helpers/fixture-modules.js';
import { goWorkspace, ok, parseJsonStream, runGo } from '../helpers/go.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy, type LogLine } from '../helpers/proxy.js';
import { startSumdb } from '../helpers/sumdb.js';
import { tempDir } from '../helpers/temp.js';

const GO_TIMEOUT_MS = 120_000;
const NAME = 'sum.fixture.test';

async function backend(opts: FixtureBackendOptions = {}): Promise<FixtureBackend> {
  const b = await startFixtureBackend(opts);
  onTestFinished(() => b.close());
  return b;
}

async function goDownload(proxyUrl: string, vkey: string, mods: string[]) {
  const { env, work } = await goWorkspace(proxyUrl);
  env.GOSUMDB = vkey;
  return runGo(['mod', 'download', '-json', ...mods], { cwd: work, env, timeoutMs: GO_TIMEOUT_MS });
}

const sumdbLines = (lines: LogLine[]) => lines.filter((l) => String(l.path).startsWith(`/sumdb/${NAME}/`));

test('the go command verifies every module through the proxy, and the second run takes lookups and full tiles from the cache', { timeout: 3 * GO_TIMEOUT_MS }, async () => {
  const origin = await backend();
  const b = await backend();
  const db = await startSumdb(NAME, origin.url);
  const p = await startTestProxy({ upstream: b.url, sumdb: { [NAME]: db.url } });

  const first = ok(await goDownload(p.url, db.vkey, allModuleVersions));
  const results = parseJsonStream(first.stdout);
  expect(results).toHaveLength(allModuleVersions.length);
  for (const r of results) expect(r.Error, `${r.Path}@${r.Version}`).toBeUndefined();

  const firstLines = sumdbLines(p.accessLines());
  expect(firstLines.find((l) => l.path === `/sumdb/${NAME}/supported`)).toMatchObject({ status: 200 });
  const lookups = firstLines.filter((l) => String(l.path).includes('/lookup/'));
  // One lookup per module version (the go command verifies each; none skipped).
  expect(lookups.map((l) => String(l.path).slice(`/sumdb/${NAME}/lookup/`.length)).sort()).toEqual(
    allModuleVersions.map((mv) => mv.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`)).sort(),
  );
  for (const l of lookups) expect(l).toMatchObject({ status: 200, cache: 'MISS', upstreamPath: expect.stringMatching(/^\/lookup\//) });
  expect(firstLines.some((l) => String(l.path).includes('/tile/'))).toBe(true);

  const before = p.accessLines().length;
  ok(await goDownload(p.url, db.vkey, allModuleVersions));
  const second = sumdbLines(p.accessLines().slice(before));
  const immutable = second.filter((l) => String(l.path).includes('/lookup/') || /\/tile\/[^.]+$/.test(String(l.path)));
  expect(immutable.length).toBeGreaterThan(0);
  for (const l of immutable) expect(l, String(l.path)).toMatchObject({ status: 200, cache: 'HIT' });
});

test('a tampered zip from the backend fails with the go command\'s checksum mismatch', { timeout: 2 * GO_TIMEOUT_MS }, async () => {
  const origin = await backend();
  const tampered = fixtureModules().map((m) =>
    m.path !== 'example.com/lib' ? m : { ...m, versions: m.versions.map((v) => ({ ...v, files: { ...v.files, 'evil.go': 'package lib\n\nvar Evil = true\n' } })) },
  );
  const b = await backend({ modules: tampered });
  const db = await startSumdb(NAME, origin.url);
  const p = await startTestProxy({ upstream: b.url, sumdb: { [NAME]: db.url } });
  const v = fixtureModules().find((m) => m.path === 'example.com/lib')?.versions[0]?.version as string;
  const r = await goDownload(p.url, db.vkey, [`example.com/lib@${v}`]);
  expect(r.code).not.toBe(0);
  expect(r.stdout + r.stderr).toMatch(/checksum mismatch/);
  expect(r.stdout + r.stderr).toMatch(/SECURITY ERROR/);
});

test('supported is answered here for configured names only; other names get 404 and are never forwarded', async () => {
  const b = await backend();
  const p = await startTestProxy({ upstream: b.url, sumdb: { [NAME]: b.url } });
  const supported = await get(`${p.url}/sumdb/${NAME}/supported`);
  expect(supported.status).toBe(200);
  const unknown = await get(`${p.url}/sumdb/sum.golang.org/supported`);
  expect(unknown.status).toBe(404);
  expect(unknown.body.toString()).toContain('not configured here');
  expect((await get(`${p.url}/sumdb/sum.golang.org/lookup/example.com/lib@v1.0.0`)).status).toBe(404);
  expect(b.requests).toHaveLength(0);
  expect(p.accessLines().map((l) => l.err)).toEqual([null, 'GPR_ERR_SUMDB_UNKNOWN', 'GPR_ERR_SUMDB_UNKNOWN']);
});

test('an intercepted connection to sum.golang.org (no /sumdb prefix) reaches the configured database, with private lookups refused', async () => {
  const db = await backend(); // records what the "checksum database" is asked
  const dir = await tempDir('gpr-sumdb-tls-');
  const p = await startTestProxy({
    upstream: db.url,
    sumdb: { 'sum.golang.org': `${db.url}/sumdb-root` },
    private: [{ match: 'corp.example', status: 404 }],
    listen: { http: '127.0.0.1:0', https: '127.0.0.1:0', admin: '127.0.0.1:0' },
    tls: { dir },
  });
  const port = Number(new URL(p.server.url('https')).port);
  const ca = await readFile(join(dir, 'ca.pem'));
  const tlsGet = (path: string) =>
    new Promise<number>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path, servername: 'sum.golang.org', ca, headers: { host: 'sum.golang.org' }, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
  await tlsGet('/lookup/example.com/lib@v1.0.0');
  await tlsGet('/tile/8/0/001');
  expect(await tlsGet('/lookup/corp.example/x@v1.0.0')).toBe(403);
  expect(db.requests.map((r) => r.path)).toEqual(['/sumdb-root/lookup/example.com/lib@v1.0.0', '/sumdb-root/tile/8/0/001']);
  expect(p.accessLines().map((l) => l.upstreamPath)).toEqual(['/sumdb-root/lookup/example.com/lib@v1.0.0', '/sumdb-root/tile/8/0/001', null]);
});

test('sumdb "upstream": the go command verifies through the upstream chain, on its sumdb template', { timeout: 2 * GO_TIMEOUT_MS }, async () => {
  const origin = await backend();
  const b = await backend();
  const db = await startSumdb(NAME, origin.url);
  // A goproxy-layout upstream that also serves /sumdb/<name>/ (as Athens and
  // goproxy.cn do): database paths go to the real database, the rest to b.
  const seen: string[] = [];
  const front = http.createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push(path);
    const prefix = `/sumdb/${NAME}/`;
    const target = path.startsWith(prefix) ? `${db.url}/${path.slice(prefix.length)}` : `${b.url}${path}`;
    http
      .get(target, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      })
      .on('error', () => res.writeHead(502).end());
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  onTestFinished(() => new Promise<void>((r) => front.close(() => r())));
  const frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  const p = await startTestProxy({ upstream: frontUrl, rewrite: 'goproxy', sumdb: { [NAME]: 'upstream' } });

  const mods = ['example.com/lib@v1.0.0', 'example.com/BurntSushi/toml@v1.0.0'];
  const results = parseJsonStream(ok(await goDownload(p.url, db.vkey, mods)).stdout);
  expect(results.map((r) => [r.Path, r.Error])).toEqual(mods.map((m) => [m.split('@')[0], undefined]));
  // supported is answered here; lookups and tiles went through the chain to the database.
  expect(seen).not.toContain(`/sumdb/${NAME}/supported`);
  expect(seen.filter((s) => s.startsWith(`/sumdb/${NAME}/lookup/`)).sort()).toEqual(mods.map((m) => `/sumdb/${NAME}/lookup/${m.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`)}`).sort());
  expect(seen.some((s) => s.startsWith(`/sumdb/${NAME}/tile/`))).toBe(true);
  for (const l of sumdbLines(p.accessLines()).filter((l) => String(l.path).includes('/lookup/'))) {
    expect(l).toMatchObject({ status: 200, upstreamPath: l.path });
  }
});
