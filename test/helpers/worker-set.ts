// Test helper: the compiled proxy started with `workers: N` as a real process
// tree (a supervisor and its forked workers), and what tests read from it:
// the supervisor's own listener addresses, the current pid of each worker
// slot, and samples of a Prometheus scrape. Must not: choose the config
// (the test writes it) or wait for anything but the workers' readiness.
import { join } from 'node:path';
import { spawnProxy, writeConfigAtomic, type ChildProxy } from './child-proxy.js';

/** A running supervisor and its workers. */
export interface WorkerSet {
  proxy: ChildProxy;
  /** http://ADDRESS of the supervisor's HTTP and admin listeners. */
  http: string;
  admin: string;
  configPath: string;
  /** The current worker pid of each slot, from the supervisor's `worker ready` lines. */
  workers(): Map<number, number>;
}

/** Writes `config` to `dir`/config.json, starts the proxy on it and resolves once `count` workers are ready. */
export async function startWorkerSet(config: Record<string, unknown>, dir: string, count: number, env?: Record<string, string>): Promise<WorkerSet> {
  const configPath = join(dir, 'config.json');
  await writeConfigAtomic(configPath, config);
  const proxy = spawnProxy({ configPath, ...(env ? { env } : {}) });
  let ready = 0;
  await proxy.waitFor((l) => l.msg === 'worker ready' && ++ready === count);
  const own = proxy.lines.filter((l) => l.msg === 'listening' && l.worker === undefined);
  const address = (role: string) => own.find((l) => l.role === role)?.address as string;
  return {
    proxy,
    configPath,
    http: `http://${address('http')}`,
    admin: `http://${address('admin')}`,
    workers() {
      const pids = new Map<number, number>();
      for (const l of proxy.lines) if (l.msg === 'worker ready') pids.set(l.worker as number, l.workerPid as number);
      return pids;
    },
  };
}

/** Sum of a metric's samples (optionally those whose labels include `labels`) in a Prometheus text scrape. */
export function sample(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
