// Passive health state (injected clock) and the per-request routing decision
// (private patterns, checksum databases, failure policy), both pure.
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { parseProxyPath, type ProxyRequest } from '../../src/goproxy/path.js';
import type { Chain } from '../../src/upstream/chain.js';
import { Health, type HealthState } from '../../src/upstream/health.js';
import { createRouter } from '../../src/upstream/route.js';

describe('Health', () => {
  test('cools down after maxFailures in a row, admits one probe after the cool-down, recovers on success', () => {
    let now = 1_000;
    const changes: Array<[HealthState, number]> = [];
    const h = new Health({ maxFailures: 2, cooldownMs: 500, now: () => now, onChange: (s, f) => changes.push([s, f]) });
    expect(h.admit()).toBe(true);
    h.failure();
    h.success(); // a success in between resets the count
    h.failure();
    expect(h.state).toBe('healthy');
    h.failure();
    expect(h.state).toBe('cooling');
    expect(h.available).toBe(false);
    expect(h.admit()).toBe(false);
    expect(h.cooldownLeftMs).toBe(500);
    now += 499;
    expect(h.admit()).toBe(false);
    now += 1;
    expect(h.available).toBe(true);
    expect(h.admit()).toBe(true); // the probe
    expect(h.admit()).toBe(false); // only one at a time
    h.failure(); // the probe failed: cool down again at once
    expect(h.state).toBe('cooling');
    now += 500;
    expect(h.admit()).toBe(true);
    h.success();
    expect(h.state).toBe('healthy');
    expect(h.failures).toBe(0);
    expect(changes).toEqual([['cooling', 2], ['probing', 2], ['cooling', 3], ['probing', 3], ['healthy', 0]]);
  });
});

describe('route', () => {
  const chain = (label: string) => ({ label }) as unknown as Chain;
  const main = chain('main');
  const corp = chain('corp');
  const sum = chain('sum');
  const config = parseConfig({
    onUpstreamFailure: 'notfound',
    private: [
      { match: 'corp.example/*', upstream: 'http://corp:1', onFailure: 'error' },
      { match: 'secret.example', status: 403 },
      { match: '*.internal', status: 404 },
    ],
  });
  const route = createRouter(config, { main, private: new Map([[0, corp]]), sumdb: new Map([['sum.golang.org', sum]]) });
  const req = (path: string): ProxyRequest => {
    const r = parseProxyPath(path);
    if (!r.ok) throw new Error(path);
    return r.request;
  };

  test.each([
    ['/example.com/x/@v/list', { kind: 'forward', chain: main, onFailure: 'notfound' }],
    ['/corp.example/x/y/@v/v1.0.0.zip', { kind: 'forward', chain: corp, onFailure: 'error', privateMatch: 'corp.example/*' }],
    ['/corp.example/@v/list', { kind: 'forward', chain: main, onFailure: 'notfound' }], // one element: the glob needs two
    ['/secret.example/sub/@latest', { kind: 'refuse', code: 'GPR_ERR_PRIVATE_REFUSED', args: ['secret.example/sub', 'secret.example'] }],
    ['/git.internal/tool/@v/list', { kind: 'refuse', code: 'GPR_ERR_PRIVATE_NOT_HERE', args: ['git.internal/tool', '*.internal'] }],
    ['/sumdb/sum.golang.org/supported', { kind: 'supported' }],
    ['/sumdb/sum.golang.org/latest', { kind: 'forward', chain: sum, onFailure: 'notfound' }],
    ['/sumdb/sum.golang.org/tile/8/0/001', { kind: 'forward', chain: sum, onFailure: 'notfound' }],
    ['/sumdb/sum.golang.org/lookup/example.com/x@v1.0.0', { kind: 'forward', chain: sum, onFailure: 'notfound' }],
    ['/sumdb/sum.golang.org/lookup/corp.example/x@v1.0.0', { kind: 'refuse', code: 'GPR_ERR_SUMDB_PRIVATE', args: ['corp.example/x', 'corp.example/*'] }],
    ['/sumdb/sum.golang.org/lookup/secret.example@v1.0.0', { kind: 'refuse', code: 'GPR_ERR_SUMDB_PRIVATE', args: ['secret.example', 'secret.example'] }],
    ['/sumdb/sum.other.org/supported', { kind: 'refuse', code: 'GPR_ERR_SUMDB_UNKNOWN', args: ['sum.other.org'] }],
  ])('%s', (path, want) => {
    expect(route(req(path))).toEqual(want);
  });
});
