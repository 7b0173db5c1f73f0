// The public command line, run as the built binary: rewrite (dry run),
// check-config, certs init/export/status, and serve on the embedded default.
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, onTestFinished, test } from 'vitest';

const MAIN = resolve('dist/src/main.js');

function run(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, timeout: 20_000 }, (err, stdout, stderr) => {
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpr-cli-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the build exists (npm test builds it in pretest)', () => {
  expect(statSync(MAIN).isFile()).toBe(true);
});

describe('rewrite', () => {
  test('shows parse, rewrite and cache decisions', async () => {
    const dir = tempDir();
    const config = join(dir, 'c.json');
    writeFileSync(config, JSON.stringify({ upstream: 'http://cache.internal:3000', rewrite: 'internal' }));
    const r = await run(['rewrite', '/github.com/%21burnt%21sushi/toml/@v/v1.0.0-%21r%21c1.zip', '--config', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('module:     github.com/BurntSushi/toml (wire: github.com/!burnt!sushi/toml)');
    expect(r.stdout).toContain('version:    v1.0.0-RC1 (wire: v1.0.0-!r!c1; canonical)');
    expect(r.stdout).toContain('upstream:   http://cache.internal:3000/v1/modules/github.com/!burnt!sushi/toml/versions/v1.0.0-!r!c1/zip');
    expect(r.stdout).toContain('cache:      immutable');
  });

  test('shows the whole chain with each entry\'s URL, header values redacted, and private decisions', async () => {
    const dir = tempDir();
    const config = join(dir, 'c.json');
    const secret = 'hunter2-token';
    writeFileSync(
      config,
      JSON.stringify({
        upstream: [
          { url: 'http://cache.internal:3000/api', rewrite: 'internal', fallThrough: 'error', headers: { 'X-Api-Key': secret } },
          { url: 'http://mirror.internal' },
          { url: 'https://proxy.golang.org' },
        ],
        private: [{ match: 'corp.example/*', status: 403 }],
      }),
    );
    const r = await run(['rewrite', '/example.com/x/@v/list', '--config', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('upstream:   http://cache.internal:3000/api/v1/modules/example.com/x/list');
    expect(r.stdout).toContain('upstream 2: http://mirror.internal/example.com/x/@v/list');
    expect(r.stdout).toContain('upstream 3: https://proxy.golang.org/example.com/x/@v/list');
    expect(r.stdout).toContain('x-api-key: [redacted]; then "|"');
    expect(r.stdout).toContain('then ",": next only after 404/410');
    expect(r.stdout).not.toContain(secret);
    const priv = await run(['rewrite', '/sumdb/sum.golang.org/lookup/corp.example/a/b@v1.0.0', '--config', config]);
    expect(priv.stdout).toMatch(/answer:\s+403 GPR_ERR_SUMDB_PRIVATE here, never forwarded/);
    const refused = await run(['rewrite', '/corp.example/a/@v/list', '--config', config]);
    expect(refused.stdout).toMatch(/answer:\s+403 GPR_ERR_PRIVATE_REFUSED/);
  });

  test('a bad path exits 1 with the status and the reason', async () => {
    const r = await run(['rewrite', '/github.com/BurntSushi/toml/@v/list']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/rejected:\s+400 GPR_ERR_BAD_MODULE_PATH/);
  });
});

describe('check-config', () => {
  test('ok, and every problem listed for a bad file', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.json');
    writeFileSync(good, readFileSync('systemd/config.json'));
    expect(await run(['check-config', '--config', good])).toMatchObject({ code: 0, stdout: `${good}: ok\n` });

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ cache: { maxBytes: -1 }, onUpstreamFailure: 'maybe', surprise: 1 }));
    const r = await run(['check-config', '--config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GPR_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain('cache.maxBytes must be a positive integer, got -1');
    expect(r.stderr).toContain('onUpstreamFailure must be "notfound" or "error", got "maybe"');
    expect(r.stderr).toContain('unknown key "surprise"');
  });
});

describe('certs', () => {
  test('init, refuse to overwrite, export, status', async () => {
    const dir = join(tempDir(), 'ca');
    const init = await run(['certs', 'init', '--dir', dir]);
    expect(init.code).toBe(0);
    expect(statSync(join(dir, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    const again = await run(['certs', 'init', '--dir', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('GPR_ERR_CA_EXISTS');

    const exported = await run(['certs', 'export', '--dir', dir]);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toBe(readFileSync(join(dir, 'ca.pem'), 'utf8'));
    expect(exported.stdout).not.toContain('PRIVATE KEY');
    expect(exported.stderr).toContain('update-ca-certificates');
    expect(exported.stderr).toContain('SSL_CERT_FILE=');

    const status = await run(['certs', 'status', '--dir', dir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(new X509Certificate(exported.stdout).fingerprint256);
    expect(status.stdout).toMatch(/permitted:\s+proxy\.golang\.org, goproxy\.cn, goproxy\.io, sum\.golang\.org/);
  });
});

test('serve on the embedded default creates the CA under certs/ and answers over HTTP and HTTPS', async () => {
  const cwd = tempDir();
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    cwd,
    env: { ...process.env, GPR_LISTEN_HTTP: '127.0.0.1:0', GPR_LISTEN_HTTPS: '127.0.0.1:0', GPR_LISTEN_ADMIN: '127.0.0.1:0', GPR_UPSTREAM: 'http://127.0.0.1:9' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const ports: Record<string, number> = {};
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg: string; role?: string; address?: string };
    if (entry.msg === 'listening' && entry.role && entry.address) ports[entry.role] = Number(entry.address.split(':').pop());
    if (Object.keys(ports).length === 3) break;
  }
  expect(statSync(join(cwd, 'certs', 'ca-key.pem')).mode & 0o777).toBe(0o600);

  const plain = await fetch(`http://127.0.0.1:${ports.http}/example.com/x/@v/list`);
  // Upstream port 9 refuses: the default policy answers 404 so the go command falls through.
  expect(plain.status).toBe(404);
  expect(await plain.text()).toMatch(/backend failed.*ECONNREFUSED/);
  expect((await fetch(`http://127.0.0.1:${ports.admin}/healthz`)).status).toBe(200);

  const ca = readFileSync(join(cwd, 'certs', 'ca.pem'));
  const status = await new Promise<number>((done, fail) => {
    https
      .get({ host: '127.0.0.1', port: ports.https, servername: 'proxy.golang.org', headers: { host: 'proxy.golang.org' }, path: '/example.com/x/@v/list', ca }, (res) => {
        res.resume();
        done(res.statusCode ?? 0);
      })
      .on('error', fail);
  });
  expect(status).toBe(404);

  child.kill('SIGTERM');
  const code = await new Promise((done) => child.once('exit', done));
  expect(code).toBe(0);
});
