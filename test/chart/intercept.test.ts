// The chart's interception script (templates/intercept-configmap.yaml), as
// rendered, run with the real nft in network namespaces standing in for a
// build node and a pod on it: the pod's veth has no address on the node side
// (as under Calico), so `dnat to HOST_IP` is what must work. Proves: pod
// traffic to a Go host address lands on the proxy port; the node's own
// traffic too, except the proxy's uid; the sidecar waits for the proxy to
// listen and deletes its table on SIGTERM. Needs root, iproute2, nftables.
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Container } from 'kubernetes-types/core/v1.js';
import { one, render } from '../helpers/helm.js';
import { requireTool } from '../helpers/go.js';
import type { Netns } from '../helpers/netns.js';
import { GO_HOST_ADDR, HOST_IP, createNodeAndPod } from './node-netns.js';
import { proxyPod } from './variants.js';

let dir: string;
let script: string;
let env: Record<string, string>;
let node: Netns;
let pod: Netns;
const children: ChildProcess[] = [];

beforeAll(async () => {
  requireTool('nft');
  dir = await mkdtemp(join(tmpdir(), 'gpr-intercept-'));
  const objects = await render({
    // A CIDR and an address inside it: the set must merge them, not refuse the overlap.
    flags: ['--set', `interception.enabled=true,interception.extraAddresses={${GO_HOST_ADDR},192.0.2.0/28},interception.bypassUids={10002}`],
  });
  const cm = one<{ data: Record<string, string> }>(objects, 'ConfigMap', 'gpr-go-proxy-rewriter-intercept');
  script = join(dir, 'intercept.sh');
  await writeFile(script, cm.data['intercept.sh'] ?? '', { mode: 0o755 });
  const sidecar = proxyPod(objects).pod.containers.find((c) => c.name === 'intercept') as Container;
  env = Object.fromEntries((sidecar.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value as string]));
  env.HOST_IP = HOST_IP;
  env.PATH = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';

  // The Go hosts resolve to 127.0.0.1 in the node (its /etc/hosts): the
  // script must leave loopback answers out and use the extra address.
  ({ node, pod } = await createNodeAndPod(env.GPR_HOSTS?.split(' ') ?? []));
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await pod?.remove();
  await node?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// A failed test must not leave its rules to the next one.
afterEach(async () => {
  await node?.exec(requireTool('nft'), ['delete', 'table', 'ip', env.GPR_TABLE as string]);
});

/**
 * A TCP server on the node at HOST_IP:<https port> answering "proxy". A
 * client that closes at once (the sidecar's listening check) must not crash it.
 */
async function startFakeProxy(): Promise<ChildProcess> {
  const port = env.GPR_HTTPS_PORT as string;
  const child = node.spawn(process.execPath, ['-e', `require('net').createServer((s) => { s.on('error', () => {}); s.end('proxy\\n'); }).listen(${port}, '${HOST_IP}', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  expect(chunk.toString()).toContain('listening');
  return child;
}

/** Connects from `ns` (as `uid`, default root) to the Go host address on 443; "proxy" or the error. */
async function dial(ns: Netns, uid?: number): Promise<string> {
  const code = `const s = require('net').connect({ host: '${GO_HOST_ADDR}', port: 443, timeout: 1500 });
    s.on('data', (d) => { process.stdout.write(d); s.destroy(); });
    s.on('timeout', () => { process.stdout.write('timeout'); s.destroy(); });
    s.on('error', (e) => process.stdout.write(e.code));`;
  const args = uid === undefined ? [process.execPath, '-e', code] : ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', process.execPath, '-e', code];
  const r = await ns.exec(uid === undefined ? (args.shift() as string) : requireTool('setpriv'), args, { timeoutMs: 10_000 });
  return r.stdout.trim();
}

async function table(): Promise<string> {
  const r = await node.exec(requireTool('nft'), ['list', 'table', 'ip', env.GPR_TABLE as string]);
  return r.code === 0 ? r.stdout : '';
}

test('apply: pod and node traffic to a Go host lands on the proxy; the proxy uid and bypass uids go direct', async () => {
  const fake = await startFakeProxy();
  const applied = await node.exec('bash', [script, 'apply'], { env });
  expect(applied.stderr).toContain(`-> ${HOST_IP}:${env.GPR_HTTPS_PORT}`);
  expect(applied.code).toBe(0);
  const rules = await table();
  expect(rules).toContain(`ip daddr @goproxy_v4 tcp dport 443 dnat to ${HOST_IP}:8443`);
  expect(rules).toMatch(/elements = \{ 192\.0\.2\.0\/28 \}/);
  expect(rules).toMatch(/elements = \{ 10001, 10002 \}/);

  expect(await dial(pod)).toBe('proxy'); // prerouting, through the address-less veth
  expect(await dial(node)).toBe('proxy'); // output, a process on the node
  expect(await dial(node, 10001)).not.toBe('proxy'); // the proxy's own uid: never redirected
  expect(await dial(node, 10002)).not.toBe('proxy');
  expect(await dial(node, 10003)).toBe('proxy');

  // Idempotent: a second apply replaces the table, one set of rules.
  expect((await node.exec('bash', [script, 'apply'], { env })).code).toBe(0);
  expect((await table()).match(/dnat to/g)).toHaveLength(2);
  expect((await node.exec('bash', [script, 'remove'], { env })).code).toBe(0);
  expect(await table()).toBe('');
  expect(await dial(pod)).not.toBe('proxy');
  fake.kill('SIGTERM');
  await once(fake, 'exit');
});

test('sidecar: waits for the proxy to listen, keeps the rules, deletes them on SIGTERM', async () => {
  const sidecar = node.spawn('bash', [script, 'sidecar'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(sidecar);
  let stderr = '';
  sidecar.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise((r) => setTimeout(r, 2000));
  expect(await table()).toBe(''); // nothing redirected while no proxy listens
  const fake = await startFakeProxy();
  const deadline = Date.now() + 10_000;
  while (!(await table()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(await table()).toContain('dnat to');
  expect(await dial(pod)).toBe('proxy');
  sidecar.kill('SIGTERM');
  const [code] = (await once(sidecar, 'exit')) as [number | null];
  expect(code).toBe(0);
  expect(stderr).toContain('deleted');
  expect(await table()).toBe('');
  expect(await dial(pod)).not.toBe('proxy');
  fake.kill('SIGTERM');
  await once(fake, 'exit');
});

test('apply with no resolvable host and no extra address fails and loads nothing', async () => {
  const r = await node.exec('bash', [script, 'apply'], { env: { ...env, GPR_EXTRA_ADDRESSES: '', GPR_HOSTS: 'no-such-host.invalid' } });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('no IPv4 address for any of: no-such-host.invalid; rules unchanged');
  expect(await table()).toBe('');
});
