// `promtool check metrics` on a real scrape of the admin /metrics after
// traffic (hits, misses, errors, a TLS refusal would add more series): it
// must report no problem at all (issue 8: prom-client's default gauges named
// *_total were three). Fails, never skips, when promtool is missing.
import { spawnSync } from 'node:child_process';
import { onTestFinished, expect, test } from 'vitest';
import { startFixtureBackend } from '../helpers/fixture-backend.js';
import { requireTool } from '../helpers/go.js';
import { get } from '../helpers/http-get.js';
import { startTestProxy } from '../helpers/proxy.js';

test('promtool check metrics reports nothing on a real scrape', async () => {
  const promtool = requireTool('promtool');
  const backend = await startFixtureBackend();
  onTestFinished(() => backend.close());
  const p = await startTestProxy({ upstream: backend.url, rewrite: 'internal' });
  const info = '/example.com/!burnt!sushi/toml/@v/v1.0.0.info';
  expect((await get(p.url + info)).status).toBe(200);
  expect((await get(p.url + info)).status).toBe(200);
  expect((await get(`${p.url}/nope`)).status).toBe(404);
  await p.server.reload();
  const scrape = await get(`${p.server.url('admin')}/metrics`);
  expect(scrape.status).toBe(200);
  const text = scrape.body.toString();
  // The scrape has the series the check should cover.
  for (const name of ['gpr_requests_total', 'gpr_request_duration_seconds_bucket', 'gpr_config_reloads_total', 'gpr_connections_open', 'gpr_process_cpu_seconds_total', 'gpr_nodejs_active_handles']) {
    expect(text).toContain(`\n${name}`);
  }
  const check = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect({ status: check.status, stdout: check.stdout, stderr: check.stderr }).toEqual({ status: 0, stdout: '', stderr: '' });
});
