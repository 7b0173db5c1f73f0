// Table-driven tests of the sd_listen_fds(3) parser and the fd -> role mapping
// (src/systemd/listen-fds.ts). The real systemd-socket-activate is exercised in
// test/integration/systemd-activation.test.ts.
import { describe, expect, test } from 'vitest';
import { assignRoles, parseListenFds, type ListenFd } from '../../src/systemd/listen-fds.js';

const PID = 4242;

describe('parseListenFds', () => {
  test.each<[string, Record<string, string | undefined>, ListenFd[] | null]>([
    ['no variables: not activated', {}, null],
    ['LISTEN_PID of another process (inherited)', { LISTEN_PID: '1', LISTEN_FDS: '1' }, null],
    ['LISTEN_PID ours but no LISTEN_FDS', { LISTEN_PID: String(PID) }, null],
    ['LISTEN_FDS without LISTEN_PID', { LISTEN_FDS: '2' }, null],
    ['one fd, no names', { LISTEN_PID: String(PID), LISTEN_FDS: '1' }, [{ fd: 3, name: 'unknown' }]],
    [
      'three fds, no names',
      { LISTEN_PID: String(PID), LISTEN_FDS: '3' },
      [
        { fd: 3, name: 'unknown' },
        { fd: 4, name: 'unknown' },
        { fd: 5, name: 'unknown' },
      ],
    ],
    ['one named fd', { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'https' }, [{ fd: 3, name: 'https' }]],
    [
      'systemd order: names follow fds',
      { LISTEN_PID: String(PID), LISTEN_FDS: '4', LISTEN_FDNAMES: 'admin:http:https:https' },
      [
        { fd: 3, name: 'admin' },
        { fd: 4, name: 'http' },
        { fd: 5, name: 'https' },
        { fd: 6, name: 'https' },
      ],
    ],
    [
      'empty names are kept, not coalesced',
      { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: ':http' },
      [
        { fd: 3, name: '' },
        { fd: 4, name: 'http' },
      ],
    ],
    ['one empty name', { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: '' }, [{ fd: 3, name: '' }]],
    [
      'unit-name default (FileDescriptorName= unset)',
      { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'go-proxy-rewriter-https.socket' },
      [{ fd: 3, name: 'go-proxy-rewriter-https.socket' }],
    ],
  ])('%s', (_name, env, fds) => {
    const parsed = parseListenFds(env, PID);
    expect(parsed === null ? null : parsed.fds).toEqual(fds);
  });

  test.each<[string, Record<string, string>, string]>([
    ['LISTEN_PID not a number', { LISTEN_PID: 'abc', LISTEN_FDS: '1' }, "LISTEN_PID must be a process id, got 'abc'"],
    ['LISTEN_PID zero', { LISTEN_PID: '0', LISTEN_FDS: '1' }, "LISTEN_PID must be a process id, got '0'"],
    ['LISTEN_PID negative', { LISTEN_PID: '-5', LISTEN_FDS: '1' }, "LISTEN_PID must be a process id, got '-5'"],
    ['LISTEN_PID with spaces', { LISTEN_PID: ` ${PID}`, LISTEN_FDS: '1' }, `LISTEN_PID must be a process id, got ' ${PID}'`],
    ['LISTEN_PID empty', { LISTEN_PID: '', LISTEN_FDS: '1' }, "LISTEN_PID must be a process id, got ''"],
    ['LISTEN_FDS zero', { LISTEN_PID: String(PID), LISTEN_FDS: '0' }, "LISTEN_FDS must be a positive integer, got '0'"],
    ['LISTEN_FDS not a number', { LISTEN_PID: String(PID), LISTEN_FDS: 'two' }, "LISTEN_FDS must be a positive integer, got 'two'"],
    ['LISTEN_FDS negative', { LISTEN_PID: String(PID), LISTEN_FDS: '-1' }, "LISTEN_FDS must be a positive integer, got '-1'"],
    ['LISTEN_FDS fractional', { LISTEN_PID: String(PID), LISTEN_FDS: '1.5' }, "LISTEN_FDS must be a positive integer, got '1.5'"],
    [
      'LISTEN_FDS too large for an int',
      { LISTEN_PID: String(PID), LISTEN_FDS: '2147483645' },
      "LISTEN_FDS must be a positive integer, got '2147483645'",
    ],
    [
      'fewer names than fds',
      { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'https' },
      "LISTEN_FDNAMES has 1 name(s) for 2 fd(s): 'https'",
    ],
    [
      'more names than fds',
      { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'https:http' },
      "LISTEN_FDNAMES has 2 name(s) for 1 fd(s): 'https:http'",
    ],
  ])('%s throws GPR_ERR_LISTEN_FDS', (_name, env, message) => {
    expect(() => parseListenFds(env, PID)).toThrow(
      expect.objectContaining({ code: 'GPR_ERR_LISTEN_FDS', message: `socket activation: ${message}` }),
    );
  });

  test('does not modify env', () => {
    const env = { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'http' };
    parseListenFds(env, PID);
    expect(env).toEqual({ LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'http' });
  });
});

describe('assignRoles', () => {
  const fds = (...names: string[]): ListenFd[] => names.map((name, i) => ({ fd: 3 + i, name }));

  test.each<[string, ListenFd[], Array<[string, number[]]>]>([
    ['one of each', fds('https', 'http', 'admin'), [['https', [3]], ['http', [4]], ['admin', [5]]]],
    ['only https', fds('https'), [['https', [3]]]],
    ['IPv4 and IPv6 per role', fds('http', 'http', 'https', 'https'), [['http', [3, 4]], ['https', [5, 6]]]],
    ['interleaved keeps fd order', fds('http', 'admin', 'http'), [['http', [3, 5]], ['admin', [4]]]],
    ['no fds', [], []],
  ])('%s', (_name, input, expected) => {
    expect([...assignRoles(input)]).toEqual(expected);
  });

  test.each<[string, ListenFd[], string]>([
    ['an unknown name', fds('https', 'foo'), "socket name 'foo' (fd 4) is not one of https, http, admin"],
    ['no names passed', fds('unknown'), "socket name 'unknown' (fd 3) is not one of https, http, admin"],
    ['the unit-name default', fds('go-proxy-rewriter-http.socket'), "socket name 'go-proxy-rewriter-http.socket' (fd 3) is not one of https, http, admin"],
    ['an empty name', fds(''), "socket name '' (fd 3) is not one of https, http, admin"],
    ['case matters', fds('HTTPS'), "socket name 'HTTPS' (fd 3) is not one of https, http, admin"],
  ])('%s throws GPR_ERR_LISTEN_FDS', (_name, input, message) => {
    expect(() => assignRoles(input)).toThrow(
      expect.objectContaining({
        code: 'GPR_ERR_LISTEN_FDS',
        message: `socket activation: ${message}: set FileDescriptorName= in the .socket unit`,
      }),
    );
  });

  test('custom role list', () => {
    expect([...assignRoles(fds('metrics'), ['metrics'])]).toEqual([['metrics', [3]]]);
    expect(() => assignRoles(fds('http'), ['metrics'])).toThrow(/is not one of metrics:/);
  });
});
