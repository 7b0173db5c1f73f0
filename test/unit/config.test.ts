// Config schema: defaults, every problem reported with its field path,
// unknown keys rejected, environment overrides, frozen result.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load.js';

describe('config', () => {
  test('the embedded default', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      listen: { http: '127.0.0.1:8080', https: '127.0.0.1:8443', admin: '127.0.0.1:9180' },
      upstream: 'https://proxy.golang.org',
      rewrite: 'goproxy',
      cache: { maxBytes: 268435456, maxEntryBytes: 67108864, mutableTtlMs: 60000, notFoundTtlMs: 30000 },
      onUpstreamFailure: 'notfound',
      timeouts: { connectMs: 5000, responseMs: 30000 },
      log: { level: 'info' },
      tls: { dir: 'certs', hosts: ['proxy.golang.org', 'goproxy.cn', 'goproxy.io', 'sum.golang.org'], leafValidityHours: 168 },
      shutdown: { drainTimeoutMs: 30000 },
    });
    expect(Object.isFrozen(config.cache)).toBe(true);
  });

  test('every problem at once, each with its field path and input', () => {
    const attempt = () =>
      parseConfig({
        cache: { maxBytes: -1, maxEntryBytes: 1.5, bogus: 1 },
        upstream: 'ftp://x',
        onUpstreamFailure: 'explode',
        rewrite: 'nginx',
        listen: { http: 'nope' },
        extra: true,
      });
    expect(attempt).toThrow(expect.objectContaining({ code: 'GPR_ERR_CONFIG_INVALID' }));
    let message = '';
    try {
      attempt();
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('cache.maxBytes must be a positive integer, got -1');
    expect(message).toContain('cache.maxEntryBytes must be a positive integer, got 1.5');
    expect(message).toContain('cache: unknown key "bogus"');
    expect(message).toContain('upstream must be an http:// or https:// URL');
    expect(message).toContain('onUpstreamFailure must be "notfound" or "error", got "explode"');
    expect(message).toContain('rewrite');
    expect(message).toContain('listen.http must be an address');
    expect(message).toContain('(top level): unknown key "extra"');
  });

  test.each([
    [{ cache: { maxBytes: 1024, maxEntryBytes: 2048 } }, 'cache.maxEntryBytes must not exceed cache.maxBytes (1024)'],
    [{ rewrite: { list: '/l/{module}', latest: '/x/{module}', info: '/i/{module}/{version}', mod: '/m/{module}/{version}', zip: '/z/{version}', sumdb: '/s/{name}/{path}' } }, 'rewrite.zip must contain {module}'],
    [{ rewrite: { list: '/l/{module}/{version}', latest: '/x/{module}', info: '/i/{module}/{version}', mod: '/m/{module}/{version}', zip: '/z/{module}/{version}', sumdb: '/s/{name}/{path}' } }, 'rewrite.list uses {version}'],
    [{ tls: { cert: '/x.pem' } }, 'tls.cert cert and key must be given together'],
    [{ tls: { hosts: ['Proxy.Golang.org'] } }, 'tls.hosts.0 must be a lower-case DNS name'],
    [{ log: { level: 'loud' } }, 'log.level must be one of'],
  ])('rejects %j', (raw, message) => {
    expect(() => parseConfig(raw)).toThrow(message);
  });

  test('cache.maxConcurrentFills: 64 by default, a positive integer', () => {
    expect(parseConfig({}).cache.maxConcurrentFills).toBe(64);
    expect(parseConfig({ cache: { maxConcurrentFills: 2 } }).cache.maxConcurrentFills).toBe(2);
    expect(() => parseConfig({ cache: { maxConcurrentFills: 0 } })).toThrow('cache.maxConcurrentFills must be a positive integer, got 0');
    expect(() => parseConfig({ cache: { maxConcurrentFills: 'many' } })).toThrow('cache.maxConcurrentFills must be a positive integer, got "many"');
  });

  test('environment overrides; an empty listen variable disables the listener', () => {
    const config = parseConfig({ upstream: 'http://a:1' }, { GPR_UPSTREAM: 'http://b:2/x', GPR_LISTEN_HTTPS: '', GPR_LISTEN_HTTP: '[::1]:9', GPR_LOG_LEVEL: 'debug' });
    expect(config.upstream).toBe('http://b:2/x');
    expect(config.listen.https).toBeNull();
    expect(config.listen.http).toBe('[::1]:9');
    expect(config.log.level).toBe('debug');
  });

  test('file errors name the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gpr-config-'));
    const file = join(dir, 'c.json');
    writeFileSync(file, '{ "cache": ');
    await expect(loadConfig(file)).rejects.toThrow(`invalid config in ${file}`);
    await expect(loadConfig(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'GPR_ERR_CONFIG_READ' });
    writeFileSync(file, JSON.stringify({ rewrite: 'internal', upstream: 'http://cache.internal:3000' }));
    expect((await loadConfig(file)).rewrite).toBe('internal');
  });
});

describe('upstream, sumdb and private', () => {
  test.each([
    ['http://a:1,http://b:2|http://c:3', undefined],
    [[{ url: 'http://a:1', fallThrough: 'error', auth: { tokenEnv: 'TOKEN' }, headers: { 'X-Team': 'x' } }, { url: 'https://b/x' }], undefined],
    ['http://a:1,direct', 'upstream may not contain "direct"'],
    ['http://a:1,ftp://b', 'upstream entry "ftp://b" must be an http:// or https:// URL'],
    [[], 'upstream must have at least one entry'],
    [[{ url: 'http://a', auth: { tokenEnv: 'A', tokenFile: '/f' } }], 'upstream.0.auth needs exactly one of tokenFile and tokenEnv'],
    [[{ url: 'http://a', fallThrough: ',' }], 'upstream.0.fallThrough must be "notfound" (GOPROXY ",") or "error" (GOPROXY "|")'],
  ])('upstream %j', (upstream, problem) => {
    const attempt = () => parseConfig({ upstream });
    if (problem === undefined) expect(attempt).not.toThrow();
    else expect(attempt).toThrow(problem);
  });

  test('sumdb defaults to sum.golang.org; private rules need one of upstream and status and a well-formed pattern', () => {
    expect(parseConfig({}).sumdb).toEqual({ 'sum.golang.org': 'https://sum.golang.org' });
    expect(parseConfig({ sumdb: { 'sum.corp.example': 'upstream' } }).sumdb).toEqual({ 'sum.corp.example': 'upstream' });
    expect(() => parseConfig({ sumdb: { 'Sum.Example': 'http://x' } })).toThrow('must be a lower-case host name');
    expect(() => parseConfig({ private: [{ match: 'corp.example/*' }] })).toThrow('private.0.match needs exactly one of upstream and status');
    expect(() => parseConfig({ private: [{ match: 'corp.example/*', status: 410 }] })).toThrow('private.0.status must be 404 or 403');
    expect(() => parseConfig({ private: [{ match: 'corp.example/[', status: 404 }] })).toThrow('private.0.match has a malformed glob "corp.example/["');
    expect(parseConfig({ private: [{ match: 'corp.example/*', upstream: 'http://git.corp:1', onFailure: 'error' }] }).private).toHaveLength(1);
  });
});
