// Runs inside the system-test container (node --import tsx): a bounded
// loopback load on the proxy for the reload and restart checks, with
// test/helpers/request-loop.ts (keep-alive and connection-per-request
// workers; a GET that failed on a reused keep-alive socket before any answer
// is retried, as the go command does). Expected bodies are fetched from the
// backend directly first.
//   load-client.ts PROXY_URL BACKEND_URL MAX_MS MAX_REQUESTS
// Prints {"ready":true} once 100 requests were answered, then runs until a
// line (or EOF) arrives on stdin, MAX_MS passes or MAX_REQUESTS were sent,
// and prints one JSON summary line: attempts, ok, failures (the first 10).
import { createInterface } from 'node:readline';
import { fixturePaths } from '../helpers/fixture-paths.js';
import { get } from '../helpers/http-get.js';
import { startRequestLoop, type Attempt } from '../helpers/request-loop.js';

const [proxyUrl, backendUrl, maxMsArg, maxRequestsArg] = process.argv.slice(2);
if (!proxyUrl || !backendUrl || !maxMsArg || !maxRequestsArg) throw new Error('usage: load-client.ts PROXY_URL BACKEND_URL MAX_MS MAX_REQUESTS');
const maxMs = Number(maxMsArg);
const maxRequests = Number(maxRequestsArg);

const paths = fixturePaths().map((p) => p.path);
const bodies = new Map<string, string>();
for (const path of paths) {
  const got = await get(backendUrl + path);
  if (got.status !== 200) throw new Error(`backend answered ${got.status} for ${path}`);
  bodies.set(path, got.body.toString());
}

const startedAt = Date.now();
const loop = startRequestLoop({ url: proxyUrl, paths, bodies, keepAliveWorkers: 4, closeWorkers: 2, timeoutMs: 15_000 });
let stopRequested = false;
createInterface({ input: process.stdin })
  .on('line', () => (stopRequested = true))
  .on('close', () => (stopRequested = true));

let ready = false;
while (!stopRequested && Date.now() - startedAt < maxMs && loop.attempts.length < maxRequests) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  if (!ready && loop.attempts.filter((a) => a.status === 200).length >= 100) {
    ready = true;
    process.stdout.write('{"ready":true}\n');
  }
}
await loop.stop();

// An attempt that was retried is judged by its retry.
const retried = new Set(loop.attempts.map((a) => a.retryOf).filter((id): id is number => id !== undefined));
const final = loop.attempts.filter((a) => !retried.has(a.id));
const failed = (a: Attempt) => a.error !== undefined || a.status !== 200 || a.bodyOk !== true;
const failures = final.filter(failed);
process.stdout.write(
  `${JSON.stringify({
    attempts: loop.attempts.length,
    requests: final.length,
    ok: final.length - failures.length,
    retries: retried.size,
    durationMs: Date.now() - startedAt,
    stoppedBy: stopRequested ? 'stdin' : loop.attempts.length >= maxRequests ? 'count' : 'time',
    failures: failures.slice(0, 10),
  })}\n`,
);
process.exit(0);
