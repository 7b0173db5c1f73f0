// journald priorities: each pino level becomes a `<N>` prefix (stripped and
// stored as PRIORITY= by journald, SyslogLevelPrefix=), and `auto` adds it
// only when stdout is the journal's stream (JOURNAL_STREAM = fd 1's
// dev:inode). test/system/ checks the result under a real journald.
import { fstatSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { adminUrl } from '../../src/cli/reload.js';
import { createLogger, journalFormat, journalPriority, withJournalPriority } from '../../src/log.js';

test.each([
  [60, 2],
  [50, 3],
  [40, 4],
  [30, 6],
  [20, 7],
  [10, 7],
])('pino level %i -> journal priority %i', (level, priority) => {
  expect(journalPriority(level)).toBe(priority);
});

describe('withJournalPriority', () => {
  function sink() {
    const lines: string[] = [];
    return { lines, stream: { write: (s: string) => void lines.push(s) } };
  }

  test('prefixes every pino line with its priority and changes nothing else', () => {
    const { lines, stream } = sink();
    const log = createLogger({ level: 'trace', destination: withJournalPriority(stream) });
    log.fatal('f');
    log.error({ err: 'x' }, 'e');
    log.warn('w');
    log.info('i');
    log.debug('d');
    log.trace('t');
    expect(lines.map((l) => l.slice(0, l.indexOf('{')))).toEqual(['<2>', '<3>', '<4>', '<6>', '<7>', '<7>']);
    const parsed = lines.map((l) => JSON.parse(l.slice(3)) as { level: number; msg: string });
    expect(parsed.map((p) => [p.level, p.msg])).toEqual([
      [60, 'f'],
      [50, 'e'],
      [40, 'w'],
      [30, 'i'],
      [20, 'd'],
      [10, 't'],
    ]);
  });

  test('leaves a line without a leading level alone', () => {
    const { lines, stream } = sink();
    withJournalPriority(stream).write('plain text\n');
    expect(lines).toEqual(['plain text\n']);
  });

  test('format "journal" prefixes a given destination, "json" never does', () => {
    const a = sink();
    createLogger({ level: 'info', format: 'journal', destination: a.stream }).error('boom');
    expect(a.lines[0]).toMatch(/^<3>\{"level":50,/);
    const b = sink();
    createLogger({ level: 'info', format: 'json', destination: b.stream }).error('boom');
    expect(b.lines[0]).toMatch(/^\{"level":50,/);
  });
});

describe('journalFormat', () => {
  const st = fstatSync(1, { bigint: true });
  test.each([
    ['auto', { JOURNAL_STREAM: `${st.dev}:${st.ino}` }, true],
    ['auto', { JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }, false],
    ['auto', { JOURNAL_STREAM: 'garbage' }, false],
    ['auto', {}, false],
    ['journal', {}, true],
    ['json', { JOURNAL_STREAM: `${st.dev}:${st.ino}` }, false],
  ] as const)('%s with %j -> %s', (format, env, expected) => {
    expect(journalFormat(format, env)).toBe(expected);
  });

  test('auto never prefixes lines that go elsewhere than stdout (a given destination)', () => {
    expect(journalFormat('auto', { JOURNAL_STREAM: `${st.dev}:${st.ino}` }, false)).toBe(false);
    expect(journalFormat('journal', {}, false)).toBe(true);
  });
});

test.each([
  ['127.0.0.1:9180', 'http://127.0.0.1:9180'],
  [':9180', 'http://127.0.0.1:9180'],
  ['0.0.0.0:9180', 'http://127.0.0.1:9180'],
  ['[::]:9180', 'http://[::1]:9180'],
  ['[::1]:9180', 'http://[::1]:9180'],
  ['admin.internal:9180', 'http://admin.internal:9180'],
])('reload finds listen.admin %s at %s', (listen, url) => {
  expect(adminUrl(listen)).toBe(url);
});
