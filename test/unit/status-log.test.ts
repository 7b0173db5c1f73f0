// The one status decision (src/status.ts) and the access-line helpers of
// src/log.ts: table-driven, valid and hostile inputs.
import { expect, test } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import { escapeControls, loggablePath } from '../../src/log.js';
import { requestLine } from '../../src/server/role-servers.js';
import { accessLevel, clientErrorCode, errorStatus, finalStatus, isBackendFailure, isErrorLine } from '../../src/status.js';

test.each([
  ['GPR_ERR_UPSTREAM_TIMEOUT', 'notfound', 404, true],
  ['GPR_ERR_UPSTREAM_UNREACHABLE', 'notfound', 404, true],
  ['GPR_ERR_UPSTREAM_STATUS', 'notfound', 404, true],
  ['GPR_ERR_UPSTREAM_TIMEOUT', 'error', 504, false],
  ['GPR_ERR_UPSTREAM_UNREACHABLE', 'error', 502, false],
  ['GPR_ERR_UPSTREAM_STATUS', 'error', 502, false],
  ['GPR_ERR_BAD_MODULE_PATH', 'notfound', 400, false],
  ['GPR_ERR_LOOP', 'notfound', 508, false],
  ['GPR_ERR_REQUEST_TIMEOUT', 'error', 408, false],
] as const)('errorStatus(%s, %s) = %i (fallthrough %s)', (code, policy, status, fallthrough) => {
  expect(errorStatus(code, policy)).toEqual({ status, fallthrough });
});

test.each([
  [200, false],
  [404, false],
  [410, false],
  [429, true],
  [500, true],
  [503, true],
])('backend status %i is a failure: %s', (status, failure) => {
  expect(isBackendFailure(status)).toBe(failure);
});

test.each([
  ['HPE_HEADER_OVERFLOW', 'GPR_ERR_HEADERS_TOO_LARGE'],
  ['ERR_HTTP_REQUEST_TIMEOUT', 'GPR_ERR_REQUEST_TIMEOUT'],
  ['HPE_INVALID_METHOD', 'GPR_ERR_BAD_REQUEST'],
  [undefined, 'GPR_ERR_BAD_REQUEST'],
])('client error %s -> %s', (nodeCode, code) => {
  expect(clientErrorCode(nodeCode)).toBe(code);
});

test.each([
  [{ statusCode: 200, finished: true, err: null }, { status: 200, err: null }],
  [{ statusCode: 200, finished: false, err: null }, { status: 499, err: 'GPR_ERR_CLIENT_GONE' }],
  [{ statusCode: 200, finished: false, err: 'GPR_ERR_UPSTREAM_BODY' as ErrorCode }, { status: 200, err: 'GPR_ERR_UPSTREAM_BODY' }],
  [{ statusCode: 404, finished: true, err: 'GPR_ERR_UPSTREAM_STATUS' as ErrorCode }, { status: 404, err: 'GPR_ERR_UPSTREAM_STATUS' }],
])('finalStatus(%j) = %j', (outcome, expected) => {
  expect(finalStatus(outcome)).toEqual(expected);
});

test.each([
  [200, null, 'info', false],
  [304, null, 'info', false],
  [404, 'GPR_ERR_NOT_PROXY_PATH', 'info', true],
  [404, 'GPR_ERR_UPSTREAM_UNREACHABLE', 'error', true],
  [200, 'GPR_ERR_UPSTREAM_BODY', 'error', true],
  [200, 'GPR_ERR_UPSTREAM_TIMEOUT', 'error', true],
  [499, 'GPR_ERR_CLIENT_GONE', 'warn', true],
  [502, 'GPR_ERR_UPSTREAM_STATUS', 'error', true],
  [500, 'GPR_ERR_INTERNAL', 'error', true],
  [408, 'GPR_ERR_REQUEST_TIMEOUT', 'info', true],
] as const)('status %i err %s: level %s, an error line: %s', (status, err, level, isError) => {
  expect(accessLevel(status, err)).toBe(level);
  expect(isErrorLine(status, err)).toBe(isError);
});

test.each([
  ['proxy.golang.org', 'proxy.golang.org'],
  ['a\u0085b', 'a\\x85b'],
  ['\u009b[31m', '\\x9b[31m'],
  ['\u001b[2J\u0000\u007f', '\\x1b[2J\\x00\\x7f'],
  ['\u00a0é', '\u00a0é'], // printable Latin-1 stays
])('escapeControls(%j) = %j', (input, output) => {
  expect(escapeControls(input)).toBe(output);
  expect(escapeControls(input)).toBe(output); // the global regex has no state left over
});

test.each([
  ['/example.com/a/@v/list', '/example.com/a/@v/list'],
  ['/x?token=s', '/x'],
  ['/x#frag?y', '/x'],
  ['http://user:pass@proxy.golang.org/x?token=s', 'http://proxy.golang.org/x'],
  ['http://proxy.golang.org/a@b', 'http://proxy.golang.org/a@b'],
  ['https://u@h', 'https://h'],
  ['proxy.golang.org:443', 'proxy.golang.org:443'],
  ['', ''],
])('loggablePath(%j) = %j', (input, output) => {
  expect(loggablePath(input)).toBe(output);
});

test.each([
  [Buffer.from('GET /a?b=c HTTP/1.1\r\nHost: h\x85\r\n\r\n', 'latin1'), { method: 'GET', host: 'h\\x85', path: '/a' }],
  [Buffer.from('GARBAGE'), { method: 'GARBAGE', host: '', path: '' }],
  [undefined, { method: '', host: '', path: '' }],
])('requestLine of a rejected packet', (raw, expected) => {
  expect(requestLine(raw)).toEqual(expected);
});
