// The error table and docs/errors.md must list the same codes (fastify's
// errors test): an undocumented code fails here.
import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { errorTable, gprError, isGprError, type ErrorCode } from '../../src/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map([...doc.matchAll(/^\| `(GPR_ERR_[A-Z_]+)` \| (\d+|–) \|/gm)].map((m) => [m[1], m[2]]));

test('every code is documented with its status, and every documented code exists', () => {
  const codes = Object.keys(errorTable);
  expect([...documented.keys()].sort()).toEqual(codes.sort());
  for (const [code, entry] of Object.entries(errorTable)) {
    expect(documented.get(code), code).toBe(entry.status === 0 ? '–' : String(entry.status));
  }
});

test.each(Object.keys(errorTable) as ErrorCode[])('%s builds an error matched by code', (code) => {
  const err = gprError(code, ['a', 'b']);
  expect(err.code).toBe(code);
  expect(err.status).toBe(errorTable[code].status);
  expect(isGprError(err)).toBe(true);
  expect(err.message).not.toContain('%s');
});

test('isGprError is false for foreign errors', () => {
  expect(isGprError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(false);
  expect(isGprError(null)).toBe(false);
});
