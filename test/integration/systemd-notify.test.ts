// sd_notify against a real AF_UNIX datagram socket (src/systemd/notify.ts),
// bound by the python3 sink of test/helpers/notify-sink.ts as systemd's
// manager would; it records every datagram with its sender PID and fds, and
// closes a BARRIER=1's fd, releasing the sender. Requires python3 and
// systemd-notify; missing ones fail the test, they are never skipped
// (.ci/run installs them).
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { GprError } from '../../src/errors.js';
import { createNotifier, monotonicUsec } from '../../src/systemd/notify.js';
import { requireNotifyTools, startSink } from '../helpers/notify-sink.js';

function collectErrors(): { errors: GprError[]; onError: (err: GprError) => void } {
  const errors: GprError[] = [];
  return { errors, onError: (err) => errors.push(err) };
}

beforeAll(requireNotifyTools);

describe('createNotifier against a real notify socket', () => {
  test('sends the exact messages, in call order, each acknowledged by a barrier', async () => {
    const sink = await startSink();
    const { errors, onError } = collectErrors();
    const notifier = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path }, { onError });
    expect(notifier.enabled).toBe(true);
    expect(notifier.watchdogIntervalMs).toBeNull();

    // Not awaited one by one: the queue alone must keep the order.
    const before = monotonicUsec();
    const sent = [
      notifier.ready('x'),
      notifier.reloading(),
      notifier.ready(),
      notifier.status('serving 3 hosts\nline two'),
      notifier.send('A=1', 'B=two words'),
      notifier.stopping(),
    ];
    await Promise.all(sent);
    const after = monotonicUsec();
    await notifier.close();

    const messages = await sink.waitFor(6);
    expect(messages).toHaveLength(6);
    expect(messages[0]).toBe('READY=1\nSTATUS=x');
    const reload = /^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$/.exec(messages[1] ?? '');
    expect(reload, messages[1]).not.toBeNull();
    const usec = BigInt(reload?.[1] ?? '0');
    expect(usec >= before && usec <= after, `${before} <= ${usec} <= ${after}`).toBe(true);
    expect(messages.slice(2)).toEqual(['READY=1', 'STATUS=serving 3 hosts line two', 'A=1\nB=two words', 'STOPPING=1']);
    // systemd-notify waited for the manager after each message (no --no-block).
    expect(sink.all.filter((d) => d.data === 'BARRIER=1' && d.fds === 1)).toHaveLength(6);
    expect(errors).toEqual([]);
  });

  test('pings the watchdog every WATCHDOG_USEC/2 until stopped', async () => {
    const sink = await startSink();
    const { errors, onError } = collectErrors();
    const notifier = createNotifier(
      { PATH: process.env.PATH, NOTIFY_SOCKET: sink.path, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) },
      { onError },
    );
    expect(notifier.watchdogIntervalMs).toBe(100);
    notifier.startWatchdog();
    notifier.startWatchdog(); // a second start must not double the pings
    await new Promise((resolve) => setTimeout(resolve, 500));
    notifier.stopWatchdog();
    await notifier.close();
    const pings = sink.messages();
    // One at once, then one per 100 ms: about 6, fewer on a loaded machine.
    expect(pings.length).toBeGreaterThanOrEqual(2);
    expect(pings.length).toBeLessThanOrEqual(7);
    expect(new Set(pings)).toEqual(new Set(['WATCHDOG=1']));
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(sink.messages()).toHaveLength(pings.length);
    expect(errors).toEqual([]);
  });

  test('no watchdog for another process (WATCHDOG_PID) or without WATCHDOG_USEC', async () => {
    const sink = await startSink();
    for (const env of [{ WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' }, {}]) {
      const notifier = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path, ...env });
      expect(notifier.watchdogIntervalMs).toBeNull();
      notifier.startWatchdog();
      await new Promise((resolve) => setTimeout(resolve, 150));
      await notifier.close();
    }
    expect(sink.messages()).toEqual([]);
  });

  test('failures go to onError, never to the caller, and the queue goes on', async () => {
    const sink = await startSink();
    const { errors, onError } = collectErrors();

    const missing = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: join(sink.path, '..', 'gone.sock') }, { onError });
    await expect(missing.ready()).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]?.code).toBe('GPR_ERR_NOTIFY');
    expect(errors[0]?.message).toMatch(/^sd_notify failed: systemd-notify READY=1 exited with 1: .*No such file or directory/);

    const noCommand = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path }, { onError, command: '/nonexistent/systemd-notify' });
    await expect(noCommand.stopping()).resolves.toBeUndefined();
    expect(errors[1]?.message).toMatch(/^sd_notify failed: cannot run \/nonexistent\/systemd-notify \(STOPPING=1\): spawn .*ENOENT/);

    const throwing = createNotifier(
      { PATH: process.env.PATH, NOTIFY_SOCKET: sink.path },
      {
        onError: (err) => {
          errors.push(err);
          throw new Error('a broken onError');
        },
      },
    );
    await expect(throwing.send('not an assignment')).resolves.toBeUndefined();
    await expect(throwing.send('A=1\nREADY=1')).resolves.toBeUndefined();
    await expect(throwing.status('still going')).resolves.toBeUndefined();
    await throwing.close();
    expect(errors.slice(2).map((e) => e.message)).toEqual([
      "sd_notify failed: 'not an assignment' is not a VAR=VALUE assignment on one line",
      "sd_notify failed: 'A=1 READY=1' is not a VAR=VALUE assignment on one line",
    ]);
    expect(await sink.waitFor(1)).toEqual(['STATUS=still going']);
  });

  test('after close() nothing is sent', async () => {
    const sink = await startSink();
    const notifier = createNotifier({ PATH: process.env.PATH, NOTIFY_SOCKET: sink.path });
    await notifier.ready();
    await notifier.close();
    await notifier.stopping();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sink.messages()).toEqual(['READY=1']);
  });
});

describe('createNotifier without NOTIFY_SOCKET', () => {
  test('is disabled and never runs the sender', async () => {
    const { errors, onError } = collectErrors();
    for (const env of [{}, { NOTIFY_SOCKET: '' }, { WATCHDOG_USEC: '200000' }]) {
      const notifier = createNotifier(env, { onError, command: '/nonexistent/systemd-notify' });
      expect(notifier.enabled).toBe(false);
      expect(notifier.watchdogIntervalMs).toBeNull();
      notifier.startWatchdog();
      await notifier.ready('x');
      await notifier.reloading();
      await notifier.close();
    }
    expect(errors).toEqual([]);
  });

  test('leaves env alone', () => {
    const env = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' };
    createNotifier(env);
    expect(env).toEqual({ NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000' });
  });
});
