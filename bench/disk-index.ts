/**
 * @module bench/disk-index
 * Issue 7's startup measurement: writes N committed objects (default
 * 100,000, small like .info/.mod files) into a temp cache.dir, then times a
 * fresh DiskTier's init() (directories; serving may start after it) and its
 * background index (every file opened and checked). Three rounds, warm page
 * cache; prints a table and writes bench/results/disk-index-<time>.json.
 *   node --import tsx bench/disk-index.ts [N]
 * Must not: write outside its temp dir and bench/results/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DiskTier, encodeHeader, keyHash, SpoolState } from '../src/cache/disk.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = 3;

const dir = mkdtempSync(join(tmpdir(), 'gpr-bench-index-'));
try {
  const tier = new DiskTier({ dir, maxBytes: 1e12 });
  await tier.init();
  await tier.indexed;
  const writeStarted = performance.now();
  const body = Buffer.from('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}');
  const dirs = new Set<string>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < N) {
        const i = next++;
        const key = `info example.com/mod${i % 997}/sub${i} v1.0.${i}`;
        const path = tier.dataPath(keyHash(key));
        const parent = join(path, '..');
        if (!dirs.has(parent)) {
          dirs.add(parent);
          await mkdir(parent, { recursive: true });
        }
        const head = { key, status: 200, contentType: 'application/json', etag: `"k-${i}"`, cacheControl: 'public, max-age=31536000, immutable', store: true };
        await writeFile(path, Buffer.concat([encodeHeader(head, SpoolState.Complete, body.length), body]));
      }
    }),
  );
  const writeSeconds = (performance.now() - writeStarted) / 1000;

  const rounds: Array<{ initMs: number; indexMs: number; objects: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    const fresh = new DiskTier({ dir, maxBytes: 1e12 });
    await fresh.init();
    const initMs = performance.now() - t0;
    const report = await fresh.indexed;
    rounds.push({ initMs: +initMs.toFixed(1), indexMs: +(performance.now() - t0).toFixed(0), objects: report.objects });
    if (report.objects !== N) throw new Error(`indexed ${report.objects} of ${N}`);
  }
  const median = [...rounds].sort((a, b) => a.indexMs - b.indexMs)[Math.floor(ROUNDS / 2)] as (typeof rounds)[number];
  const when = new Date().toISOString();
  process.stdout.write(`disk-index: ${N} objects (written in ${writeSeconds.toFixed(1)} s), warm page cache (${when})\n`);
  process.stdout.write('round  init ms (serving may start)  index ms (all checked)\n');
  rounds.forEach((r, i) => process.stdout.write(`${String(i + 1).padStart(5)}  ${String(r.initMs).padStart(28)}  ${String(r.indexMs).padStart(22)}\n`));
  process.stdout.write(`median index: ${median.indexMs} ms (${Math.round(N / (median.indexMs / 1000))} objects/s)\n`);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, `bench/results/disk-index-${when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify({ scenario: 'disk-index', date: when, node: process.version, objects: N, rounds, medianIndexMs: median.indexMs }, null, 2));
  process.stdout.write(`wrote ${out}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
