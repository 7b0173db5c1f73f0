// The hand-built access line (src/log.ts accessLine) against pino itself: for
// the same logger and fields, accessLog writes byte for byte what
// `log[level](fields, 'request')` writes, for hostile strings (quotes,
// backslashes, C0/C1 controls, non-ASCII, lone surrogates, long strings),
// under a worker's child logger and with the journald `<N>` prefix; loggers
// with options the hand-built line does not reproduce fall back to pino.
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { accessLog, createLogger, escapeControls, handBuilt, jsonString, type AccessFields, type Logger } from '../../src/log.js';

function sink() {
  const lines: string[] = [];
  return { lines, stream: { write: (s: string) => void lines.push(s) } };
}

const TIME = ',"time":1795785601148';

/** A logger like createLogger's (same redaction), with a fixed time so two lines can be compared. */
function fixedTimeLogger(opts: pino.LoggerOptions = {}) {
  const out = sink();
  const log = pino(
    {
      level: 'info',
      base: { pid: 4242 },
      timestamp: () => TIME,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'], censor: '[redacted]' },
      ...opts,
    },
    out.stream,
  );
  return { log, lines: out.lines };
}

function fields(over: Partial<AccessFields> = {}): AccessFields {
  return {
    reqId: 'k2x-1f',
    method: 'GET',
    host: 'proxy.golang.org',
    path: '/example.com/a/@v/v1.0.0.info',
    upstreamPath: '/v1/modules/example.com/a/versions/v1.0.0/info',
    status: 200,
    cache: 'HIT',
    bytes: 73,
    durationMs: 0.123,
    upstreamMs: null,
    err: null,
    ...over,
  };
}

/** What pino writes for the line accessLog would write (host and path escaped first, as accessLog does). */
function pinoLine(log: Logger, f: AccessFields, level: 'info' | 'warn' | 'error', lines: string[]): string {
  log[level]({ ...f, host: escapeControls(f.host), path: escapeControls(f.path) }, 'request');
  return lines.pop()!;
}

function handLine(log: Logger, f: AccessFields, lines: string[]): string {
  expect(handBuilt(log)).toBe(true);
  accessLog(log, { ...f });
  expect(lines).toHaveLength(1);
  return lines.pop()!;
}

const TRICKY = [
  'proxy.golang.org',
  'a"b',
  'back\\slash',
  '"\\"',
  'tab\there',
  'nul\u0000x',
  'esc\u001b[2J',
  'del\u007f',
  'c1\u0085\u009b[31m',
  'nbsp\u00a0é',
  'bücher.example',
  'xn--bcher-kva.example',
  '日本.example',
  'emoji \u{1f600}',
  'lone \ud800 high',
  'lone \udc00 low',
  '\u2028\u2029',
  '',
  'x'.repeat(100),
  'x'.repeat(101),
  `${'y'.repeat(99)}"`,
  `${'z'.repeat(150)}\u0001`,
  '</script>',
];

describe('the hand-built access line equals pino', () => {
  test.each(TRICKY)('host and path %j', (s) => {
    const { log, lines } = fixedTimeLogger();
    const f = fields({ host: s, path: `/${s}`, method: s, upstreamPath: s });
    expect(handLine(log, f, lines)).toBe(pinoLine(log, f, 'info', lines));
  });

  test.each([
    [fields({ status: 502, cache: 'MISS', err: 'GPR_ERR_UPSTREAM_STATUS', upstreamMs: 12.5 }), 'error'],
    [fields({ status: 499, err: 'GPR_ERR_CLIENT_GONE', bytes: 1048576 }), 'warn'],
    [fields({ status: 404, cache: null, upstreamPath: null, err: 'GPR_ERR_NOT_PROXY_PATH' }), 'info'],
    [fields({ durationMs: Number.NaN, upstreamMs: Number.POSITIVE_INFINITY }), 'info'],
    [fields({ durationMs: 1e21, bytes: -0, upstreamMs: 0.1 + 0.2 }), 'info'],
  ] as const)('fields %j at %s', (f, level) => {
    const { log, lines } = fixedTimeLogger();
    const hand = handLine(log, f, lines);
    expect(hand).toBe(pinoLine(log, f, level, lines));
    expect((JSON.parse(hand) as { level: number }).level).toBe({ error: 50, warn: 40, info: 30 }[level]);
  });

  test('any strings (fast-check, every code point incl. lone surrogates)', () => {
    const { log, lines } = fixedTimeLogger();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 130 }), fc.string({ unit: 'binary-ascii', maxLength: 130 }), (a, b) => {
        const f = fields({ host: a, path: b, method: b, upstreamPath: a, err: a });
        expect(handLine(log, f, lines)).toBe(pinoLine(log, f, 'info', lines));
      }),
      { numRuns: 2000 },
    );
  });

  test('under a worker child logger, with its bindings', () => {
    const { log, lines } = fixedTimeLogger();
    const child = log.child({ worker: 1 });
    const f = fields();
    const hand = handLine(child, f, lines);
    expect(hand).toBe(pinoLine(child, f, 'info', lines));
    expect(hand.startsWith(`{"level":30${TIME},"pid":4242,"worker":1,"reqId":"k2x-1f",`)).toBe(true);
    expect(hand.endsWith(',"err":null,"msg":"request"}\n')).toBe(true);
  });

  test('JSON.parse of the line gives the fields, with host and path escaped', () => {
    const { log, lines } = fixedTimeLogger();
    const f = fields({ host: 'h\u0085"\\', path: '/p\u0000é' });
    accessLog(log, { ...f });
    expect(JSON.parse(lines[0]!)).toEqual({ level: 30, time: 1795785601148, pid: 4242, ...f, host: 'h\\x85"\\', path: '/p\\x00é', msg: 'request' });
  });
});

describe('createLogger lines', () => {
  test('journald priority prefix on the hand-built line', () => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'journal', destination: out.stream });
    accessLog(log, fields());
    accessLog(log, fields({ status: 503, err: 'GPR_ERR_UPSTREAM_UNREACHABLE' }));
    accessLog(log, fields({ status: 499, err: 'GPR_ERR_CLIENT_GONE' }));
    expect(out.lines.map((l) => l.slice(0, l.indexOf('{')))).toEqual(['<6>', '<3>', '<4>']);
    expect(out.lines.map((l) => (JSON.parse(l.slice(3)) as { status: number }).status)).toEqual([200, 503, 499]);
  });

  test('a logger at warn drops info access lines and keeps warn and error ones; log.access modes', () => {
    const out = sink();
    const log = createLogger({ level: 'warn', destination: out.stream });
    accessLog(log, fields());
    accessLog(log, fields({ status: 499, err: 'GPR_ERR_CLIENT_GONE' }));
    accessLog(log, fields({ status: 500, err: 'GPR_ERR_INTERNAL' }), 'errors');
    accessLog(log, fields({ status: 500, err: 'GPR_ERR_INTERNAL' }), 'off');
    expect(out.lines.map((l) => (JSON.parse(l) as { level: number; status: number }).status)).toEqual([499, 500]);
  });

  test('the level can change at run time (a reload)', () => {
    const out = sink();
    const log = createLogger({ level: 'info', destination: out.stream });
    accessLog(log, fields());
    log.level = 'error';
    accessLog(log, fields());
    log.level = 'info';
    accessLog(log, fields());
    expect(out.lines).toHaveLength(2);
  });
});

describe('loggers the hand-built line does not reproduce fall back to pino', () => {
  test.each([
    ['mixin', { mixin: () => ({ extra: 1 }) }, '"extra":1'],
    ['a serializer of an access field', { serializers: { host: (h: string) => h.toUpperCase() } }, '"host":"PROXY.GOLANG.ORG"'],
    ['redaction of an access field', { redact: ['path'] }, '"path":"[Redacted]"'],
    ['a log formatter', { formatters: { log: (o: Record<string, unknown>) => ({ ...o, formatted: true }) } }, '"formatted":true'],
    ['a message prefix', { msgPrefix: '[p] ' }, '"msg":"[p] request"'],
    ['a nested key', { nestedKey: 'payload' }, '"payload":{'],
  ] as const)('%s', (_name, opts, expected) => {
    const { log, lines } = fixedTimeLogger(opts as pino.LoggerOptions);
    expect(handBuilt(log)).toBe(false);
    accessLog(log, fields());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(expected);
  });

  test('pino.multistream (wants each line\'s metadata)', () => {
    const out = sink();
    const log = pino({ level: 'info' }, pino.multistream([{ stream: out.stream }]));
    expect(handBuilt(log)).toBe(false);
    accessLog(log, fields());
    expect((JSON.parse(out.lines[0]!) as { msg: string }).msg).toBe('request');
  });
});

test.each([
  ['plain', '"plain"'],
  ['a"b\\c', '"a\\"b\\\\c"'],
  ['\u0001', '"\\u0001"'],
  ['é', '"é"'],
  ['\ud800', '"\ud800"'], // as pino writes it: raw (UTF-8 output turns it into U+FFFD)
  ['x'.repeat(101).concat('\ud800'), JSON.stringify('x'.repeat(101).concat('\ud800'))],
])('jsonString(%j) = %s', (input, output) => {
  expect(jsonString(input)).toBe(output);
});
