// Header values of upstream entries (public chain and private rules) never
// appear in a config dump; everything else is kept.
import { expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { redactConfig } from '../../src/upstream/redact.js';

test('redactConfig hides every upstream header value and keeps the rest', () => {
  const config = parseConfig({
    upstream: [{ url: 'http://a:1', headers: { 'X-Api-Key': 'k1' }, auth: { tokenEnv: 'TOKEN' } }, { url: 'http://b:2' }],
    private: [{ match: 'corp.example/*', upstream: [{ url: 'http://c:3', headers: { Authorization: 'Bearer k2' } }] }, { match: 'x.example', status: 404 }],
  });
  const shown = JSON.stringify(redactConfig(config));
  expect(shown).not.toContain('k1');
  expect(shown).not.toContain('k2');
  expect(shown).toContain('"X-Api-Key":"[redacted]"');
  expect(shown).toContain('"Authorization":"[redacted]"');
  expect(shown).toContain('"tokenEnv":"TOKEN"');
  expect(shown).toContain('http://b:2');
  // The config itself is untouched (frozen, and still usable).
  expect(JSON.stringify(config)).toContain('k1');
  expect(redactConfig(parseConfig({ upstream: 'http://a,http://b' })).upstream).toBe('http://a,http://b');
});
