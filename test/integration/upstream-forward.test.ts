/**
 * The forwarding engine against a raw backend that sends the whole answer and
 * its FIN at once, read by a consumer slower than the backend. undici (7.30)
 * fails such a response when its parser is paused on the span that ends the
 * body while the FIN is already read: "other side closed" for a keep-alive
 * answer, an uncaught AssertionError (a dead process) for a close-delimited
 * one. src/upstream/forward.ts resumes paused parsers at the socket's 'end'.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { expect, onTestFinished, test } from 'vitest';
import { createUpstream } from '../../src/upstream/forward.js';
import { rawBackend } from '../helpers/raw-backend.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads `body` one chunk per `delayMs`: the stream stays paused between chunks. */
async function readSlowly(body: Readable, delayMs: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    await new Promise((r) => setTimeout(r, delayMs));
  }
  return Buffer.concat(chunks);
}

const framings: Array<[string, (body: Buffer) => string, (body: Buffer) => Buffer]> = [
  ['Content-Length, keep-alive', (b) => `Content-Length: ${b.length}\r\n`, (b) => b],
  ['Content-Length, Connection: close', (b) => `Content-Length: ${b.length}\r\nConnection: close\r\n`, (b) => b],
  ['chunked', () => 'Transfer-Encoding: chunked\r\n', (b) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n0\r\n\r\n')])],
  ['close-delimited', () => 'Connection: close\r\n', (b) => b],
];

// 1 MiB in 10 rounds failed every run without the fix; smaller bodies rarely did.
test.each(framings)('%s: a 1 MiB answer and its FIN, read by a slow consumer, arrive whole every time', { timeout: 20_000 }, async (_name, headers, encode) => {
  const body = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < body.length; i += 32) createHash('sha256').update(String(i)).digest().copy(body, i);
  const b = await rawBackend((s) => s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\n${headers(body)}\r\n`), encode(body)])));
  const up = createUpstream({ url: b.url, connectMs: 2000, responseMs: 5000 });
  onTestFinished(() => up.close());
  for (let round = 0; round < 10; round++) {
    const res = await up.fetch('/m.zip', {});
    expect(res.status).toBe(200);
    const got = await readSlowly(res.body, 2);
    expect(got.length).toBe(body.length);
    expect(sha256(got)).toBe(sha256(body));
  }
  expect(b.requests).toHaveLength(10);
});
