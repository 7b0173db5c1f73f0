// Table-driven tests of where the listeners listen (src/systemd/sockets.ts
// listenTargets, parseListenAddress, describeTarget). No sockets are opened
// here; listenOn is tested against the kernel in
// test/integration/systemd-activation.test.ts.
import { describe, expect, test } from 'vitest';
import {
  describeTarget,
  listenTargets,
  parseListenAddress,
  type ListenConfig,
  type ListenTarget,
} from '../../src/systemd/sockets.js';

const PID = 777;
const CONFIG: ListenConfig = { http: '127.0.0.1:8080', https: '127.0.0.1:8443', admin: '127.0.0.1:9180' };

describe('parseListenAddress', () => {
  test.each<[string, string, number]>([
    ['127.0.0.1:8080', '127.0.0.1', 8080],
    ['0.0.0.0:80', '0.0.0.0', 80],
    ['localhost:443', 'localhost', 443],
    ['proxy.build-1.internal:8443', 'proxy.build-1.internal', 8443],
    ['[::1]:8443', '::1', 8443],
    ['[::]:443', '::', 443],
    ['[fe80::1]:65535', 'fe80::1', 65535],
    [':8080', '', 8080],
    ['127.0.0.1:0', '127.0.0.1', 0],
    [':0', '', 0],
  ])('%s', (address, host, port) => {
    expect(parseListenAddress(address, 'http')).toEqual({ role: 'http', host, port });
  });

  test.each<[string, string]>([
    ['8080', 'expected host:port, [ipv6]:port or :port; the port is missing'],
    ['', 'expected host:port, [ipv6]:port or :port; the port is missing'],
    ['127.0.0.1', 'expected host:port, [ipv6]:port or :port; the port is missing'],
    ['127.0.0.1:', "port must be an integer from 0 to 65535, got ''"],
    ['127.0.0.1:65536', "port must be an integer from 0 to 65535, got '65536'"],
    ['127.0.0.1:http', "port must be an integer from 0 to 65535, got 'http'"],
    ['127.0.0.1:-1', "port must be an integer from 0 to 65535, got '-1'"],
    ['127.0.0.1:80 ', "port must be an integer from 0 to 65535, got '80 '"],
    ['::1:8080', 'an IPv6 address needs brackets, e.g. [::1]:8080'],
    ['[::1:8080', 'an IPv6 address in brackets is missing its closing ]'],
    ['[127.0.0.1]:80', "'127.0.0.1' is not an IPv6 address"],
    ['[]:80', "'' is not an IPv6 address"],
    ['256.0.0.1:80', "'256.0.0.1' is not an IPv4 address"],
    ['1.2.3:80', "'1.2.3' is not an IPv4 address"],
    ['exa mple:80', "'exa mple' is not a host name or IP address"],
    ['-bad.example:80', "'-bad.example' is not a host name or IP address"],
    ['http://127.0.0.1:80', 'expected host:port, not a URL'],
  ])('%j throws GPR_ERR_LISTEN', (address, reason) => {
    expect(() => parseListenAddress(address, 'https')).toThrow(
      expect.objectContaining({ code: 'GPR_ERR_LISTEN', message: `cannot listen on '${address}' (https): ${reason}` }),
    );
  });
});

describe('listenTargets', () => {
  test.each<[string, ListenConfig, Record<string, string>, ListenTarget[]]>([
    [
      'not activated: every configured role, https first',
      CONFIG,
      {},
      [
        { role: 'https', host: '127.0.0.1', port: 8443 },
        { role: 'http', host: '127.0.0.1', port: 8080 },
        { role: 'admin', host: '127.0.0.1', port: 9180 },
      ],
    ],
    ['null and absent roles are disabled', { http: ':0', https: null }, {}, [{ role: 'http', host: '', port: 0 }]],
    ['nothing configured', {}, {}, []],
    [
      'LISTEN_PID of another process: config is used',
      { admin: '[::1]:9180' },
      { LISTEN_PID: String(PID + 1), LISTEN_FDS: '1', LISTEN_FDNAMES: 'admin' },
      [{ role: 'admin', host: '::1', port: 9180 }],
    ],
    [
      'activated: one fd per role, config ignored',
      CONFIG,
      { LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'https:http:admin' },
      [
        { role: 'https', fd: 3 },
        { role: 'http', fd: 4 },
        { role: 'admin', fd: 5 },
      ],
    ],
    [
      'activated: roles not passed are absent, not bound from config',
      CONFIG,
      { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'https' },
      [{ role: 'https', fd: 3 }],
    ],
    [
      'activated: several fds per role, in fd order',
      {},
      { LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'http:https:http' },
      [
        { role: 'http', fd: 3 },
        { role: 'https', fd: 4 },
        { role: 'http', fd: 5 },
      ],
    ],
    [
      'activated: malformed config addresses are not looked at',
      { http: 'nonsense' },
      { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_FDNAMES: 'http' },
      [{ role: 'http', fd: 3 }],
    ],
  ])('%s', (_name, listen, vars, expected) => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', ...vars };
    expect(listenTargets(listen, env, PID)).toEqual(expected);
    // sd_listen_fds(unset_environment=1): gone, whoever they were for; the rest stays.
    expect(env).toEqual({ PATH: '/usr/bin' });
  });

  test.each<[string, ListenConfig, Record<string, string>, string, RegExp]>([
    [
      'unknown socket name',
      CONFIG,
      { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'https:foo' },
      'GPR_ERR_LISTEN_FDS',
      /^socket activation: socket name 'foo' \(fd 4\) is not one of https, http, admin: set FileDescriptorName= in the \.socket unit$/,
    ],
    [
      'malformed LISTEN_FDS',
      CONFIG,
      { LISTEN_PID: String(PID), LISTEN_FDS: 'x' },
      'GPR_ERR_LISTEN_FDS',
      /^socket activation: LISTEN_FDS must be a positive integer, got 'x'$/,
    ],
    ['malformed config address', { admin: '9180' }, {}, 'GPR_ERR_LISTEN', /^cannot listen on '9180' \(admin\): /],
  ])('%s throws %s and still cleans env', (_name, listen, vars, code, message) => {
    const env: NodeJS.ProcessEnv = { HOME: '/root', ...vars };
    expect(() => listenTargets(listen, env, PID)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
    expect(env).toEqual({ HOME: '/root' });
  });
});

describe('describeTarget', () => {
  test.each<[ListenTarget, string]>([
    [{ role: 'https', fd: 3 }, 'fd 3'],
    [{ role: 'http', host: '127.0.0.1', port: 80 }, '127.0.0.1:80'],
    [{ role: 'http', host: '::1', port: 443 }, '[::1]:443'],
    [{ role: 'admin', host: '', port: 9180 }, ':9180'],
  ])('%j -> %s', (target, text) => {
    expect(describeTarget(target)).toBe(text);
  });
});
