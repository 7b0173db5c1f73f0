// Table-driven tests of the watchdog settings read by src/systemd/notify.ts
// (sd_watchdog_enabled(3)). Sending is tested against a real socket in
// test/integration/systemd-notify.test.ts.
import { expect, test } from 'vitest';
import { watchdogIntervalMs } from '../../src/systemd/notify.js';

const PID = 321;

test.each<[string, Record<string, string>, number | null]>([
  ['WatchdogSec=30', { WATCHDOG_USEC: '30000000' }, 15_000],
  ['WATCHDOG_PID is ours', { WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(PID) }, 15_000],
  ['200 ms', { WATCHDOG_USEC: '200000' }, 100],
  ['below 2 ms still pings every ms', { WATCHDOG_USEC: '1' }, 1],
  ['no WATCHDOG_USEC', {}, null],
  ['WATCHDOG_PID of another process', { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, null],
  ['zero', { WATCHDOG_USEC: '0' }, null],
  ['not a number', { WATCHDOG_USEC: '30s' }, null],
  ['negative', { WATCHDOG_USEC: '-1' }, null],
  ['empty', { WATCHDOG_USEC: '' }, null],
])('%s', (_name, env, expected) => {
  expect(watchdogIntervalMs(env, PID)).toBe(expected);
});
