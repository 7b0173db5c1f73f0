// The proxy run the way the chart's DaemonSet pod runs it, without a
// cluster: the rendered config.json in kubelet's ConfigMap layout (a
// timestamped directory, `..data` -> it, `config.json` -> `..data/config.json`)
// and the CA Secret bind-mounted at the chart's paths in a private mount
// namespace, the rendered container environment (GPR_LISTEN_* =
// $(HOST_IP):port), uid 10001, in a node network namespace, with the
// rendered interception sidecar. A pod namespace then fetches through
// https://proxy.golang.org with curl, trusting only the CA, as an
// intercepted build pod does; a kubelet-style ConfigMap swap changes the
// rewrite without a restart; SIGTERM drains and the sidecar removes its table.
// Needs root, iproute2, nftables, util-linux (unshare, setpriv), curl,
// openssl and the build (dist/).
import { afterAll, beforeAll, expect, test } from 'vitest';
import { once } from 'node:events';
import { chmod, chown, copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Container } from 'kubernetes-types/core/v1.js';
import { one, render, type K8sObject } from '../helpers/helm.js';
import { requireTool } from '../helpers/go.js';
import type { Netns } from '../helpers/netns.js';
import { openssl } from '../helpers/openssl.js';
import { GO_HOST_ADDR, HOST_IP, createNodeAndPod } from './node-netns.js';
import { proxyPod } from './variants.js';

const MAIN_JS = resolve(import.meta.dirname, '../../dist/src/main.js');
const BACKEND_PORT = 3000; // inside the node namespace only
const UID = 10001;

let dir: string;
let node: Netns;
let pod: Netns;
let proxyEnv: Record<string, string>;
let sidecarEnv: Record<string, string>;
let interceptScript: string;
let caCert: string;
let cmDir: string;
let swaps = 0;
const children: ChildProcess[] = [];
const backendPaths: string[] = [];

function renderFlags(rewrite: string): string[] {
  return ['--set', `interception.enabled=true,interception.extraAddresses={${GO_HOST_ADDR}},config.upstream=http://${HOST_IP}:${BACKEND_PORT},config.rewrite=${rewrite}`];
}

function configJson(objects: K8sObject[]): string {
  return one<{ data: Record<string, string> }>(objects, 'ConfigMap', 'gpr-go-proxy-rewriter').data['config.json'] as string;
}

/** Writes config.json the way kubelet updates a ConfigMap volume: new timestamped directory, then rename a new `..data` symlink over the old one, then remove the old directory. */
async function kubeletSwap(text: string): Promise<void> {
  const stamp = `..2026_11_27_11_00_00.${++swaps}`;
  await mkdir(join(cmDir, stamp));
  await writeFile(join(cmDir, stamp, 'config.json'), text);
  await chmod(join(cmDir, stamp), 0o755);
  const old = swaps > 1 ? `..2026_11_27_11_00_00.${swaps - 1}` : undefined;
  await symlink(stamp, join(cmDir, '..data_tmp'));
  await rename(join(cmDir, '..data_tmp'), join(cmDir, '..data'));
  if (swaps === 1) await symlink('..data/config.json', join(cmDir, 'config.json'));
  if (old) await rm(join(cmDir, old), { recursive: true });
}

function envOf(container: Container): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  for (const e of container.env ?? []) if (e.value !== undefined) env[e.name] = e.value.replaceAll('$(HOST_IP)', HOST_IP);
  env.HOST_IP = HOST_IP;
  return env;
}

/** Runs JS with node inside `ns`; resolves with stdout. */
async function nodeIn(ns: Netns, code: string): Promise<string> {
  const r = await ns.exec(process.execPath, ['-e', code], { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`node in ${ns.name}: ${r.stderr}`);
  return r.stdout;
}

async function admin(path: string): Promise<{ status: number; body: string }> {
  const out = await nodeIn(node, `fetch('http://${HOST_IP}:9180${path}').then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => console.log(JSON.stringify({ status: 0, body: String(e) })))`);
  return JSON.parse(out) as { status: number; body: string };
}

async function configGeneration(): Promise<number> {
  const { body } = await admin('/metrics');
  return Number(/^gpr_config_generation (\d+)/m.exec(body)?.[1] ?? NaN);
}

/** curl from the pod to https://proxy.golang.org/<path>, resolved to the Go host address, trusting only our CA. */
async function fetchFromPod(path: string): Promise<{ code: number; status: string; body: string; headers: string }> {
  const r = await pod.exec(requireTool('curl'), ['-sS', '-D', '-', '--max-time', '10', '--cacert', caCert, '--resolve', `proxy.golang.org:443:${GO_HOST_ADDR}`, `https://proxy.golang.org${path}`], { timeoutMs: 20_000 });
  const [headers = '', body = ''] = r.stdout.split('\r\n\r\n');
  return { code: r.code, status: headers.split('\r\n')[0] ?? '', body, headers: `${headers}\n${r.stderr}` };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  if (!existsSync(MAIN_JS)) throw new Error(`${MAIN_JS} is missing: run \`npm run build\` first`);
  for (const tool of ['nft', 'unshare', 'setpriv', 'curl']) requireTool(tool);
  dir = await mkdtemp(join(tmpdir(), 'gpr-pod-'));
  const objects = await render({ flags: renderFlags('internal') });
  const { pod: podSpec, proxy } = proxyPod(objects);
  proxyEnv = envOf(proxy);
  sidecarEnv = envOf(podSpec.containers.find((c) => c.name === 'intercept') as Container);
  const interceptCm = one<{ data: Record<string, string> }>(objects, 'ConfigMap', 'gpr-go-proxy-rewriter-intercept');
  interceptScript = join(dir, 'intercept.sh');
  await writeFile(interceptScript, interceptCm.data['intercept.sh'] as string, { mode: 0o755 });

  // The volumes: the ConfigMap (kubelet layout), the CA Secret (tls.crt,
  // tls.key; group-readable by fsGroup as defaultMode 0440 makes it).
  cmDir = join(dir, 'configmap');
  await mkdir(cmDir, { mode: 0o755 });
  await kubeletSwap(configJson(objects));
  const caDir = join(dir, 'ca-secret');
  await mkdir(caDir, { mode: 0o755 });
  await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(caDir, 'tls.key'), '-out', join(caDir, 'tls.crt'),
    '-days', '2', '-subj', '/CN=chart pod test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  for (const f of ['tls.crt', 'tls.key']) {
    await chown(join(caDir, f), 0, UID);
    await chmod(join(caDir, f), 0o440);
  }
  caCert = join(dir, 'ca.pem');
  await copyFile(join(caDir, 'tls.crt'), caCert);

  ({ node, pod } = await createNodeAndPod(sidecarEnv.GPR_HOSTS?.split(' ') ?? []));

  // The backend the config names, inside the node: answers every path with a list and records it.
  const backend = node.spawn(process.execPath, ['-e', `require('http').createServer((q, s) => { console.log(q.url); s.writeHead(200, { 'content-type': 'text/plain' }); s.end('v1.0.0\\n'); }).listen(${BACKEND_PORT}, '${HOST_IP}', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(backend);
  backend.stdout?.on('data', (d: Buffer) => backendPaths.push(...d.toString().split('\n').filter((l) => l.startsWith('/'))));
  await once(backend.stdout as NodeJS.ReadableStream, 'data');

  // The pod: private mounts at the chart's paths (an emptyDir for the state
  // and /tmp, a read-only root), then the proxy as uid 10001.
  const mounts = [
    'set -e',
    'mount --make-rprivate /',
    'mount -t tmpfs -o mode=0755 tmpfs /etc',
    'mkdir /etc/go-proxy-rewriter /etc/go-proxy-rewriter-ca',
    `mount --bind ${cmDir} /etc/go-proxy-rewriter`,
    `mount --bind ${caDir} /etc/go-proxy-rewriter-ca`,
    'mount -t tmpfs -o mode=0755 tmpfs /var/lib',
    `mkdir /var/lib/go-proxy-rewriter && chown ${UID}:${UID} /var/lib/go-proxy-rewriter`,
    `exec setpriv --reuid ${UID} --regid ${UID} --groups ${UID} ${process.execPath} ${MAIN_JS} serve --config /etc/go-proxy-rewriter/config.json`,
  ].join('\n');
  const proxyProcess = node.spawn(requireTool('unshare'), ['--mount', 'bash', '-c', mounts], { env: proxyEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proxyProcess);
  let stderr = '';
  proxyProcess.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await until('the proxy to be ready on the admin port (readiness probe)', async () => {
    if (proxyProcess.exitCode !== null) throw new Error(`the pod's proxy exited ${proxyProcess.exitCode}: ${stderr}`);
    return (await admin('/readyz')).status === 200;
  });

  const sidecar = node.spawn('bash', [interceptScript, 'sidecar'], { env: sidecarEnv, stdio: 'ignore' });
  children.push(sidecar);
  await until('the sidecar table', async () => (await node.exec(requireTool('nft'), ['list', 'table', 'ip', sidecarEnv.GPR_TABLE as string])).code === 0);
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await node?.exec(requireTool('nft'), ['delete', 'table', 'ip', sidecarEnv?.GPR_TABLE ?? 'none']);
  await pod?.remove();
  await node?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('probes answer on the node address: /healthz and /readyz', async () => {
  expect(await admin('/healthz')).toEqual({ status: 200, body: 'ok\n' });
  expect(await admin('/readyz')).toEqual({ status: 200, body: 'ready\n' });
});

test('an intercepted pod fetches https://proxy.golang.org through the node proxy, trusting only the CA from the Secret', async () => {
  const first = await fetchFromPod('/golang.org/x/mod/@v/list');
  expect(first.code, first.headers).toBe(0);
  expect(first.status).toMatch(/^HTTP\/1\.1 200/);
  expect(first.body).toBe('v1.0.0\n');
  expect(first.headers).toMatch(/x-cache: MISS/i);
  // rewrite: internal, from the rendered config
  expect(backendPaths).toContain('/v1/modules/golang.org/x/mod/list');
  const second = await fetchFromPod('/golang.org/x/mod/@v/list');
  expect(second.headers).toMatch(/x-cache: HIT/i);
  expect(backendPaths.filter((p) => p === '/v1/modules/golang.org/x/mod/list')).toHaveLength(1);
});

test('a kubelet-style ConfigMap update takes effect without a restart (reload.watch)', async () => {
  const before = await configGeneration();
  expect(before).toBeGreaterThanOrEqual(1);
  await kubeletSwap(configJson(await render({ flags: renderFlags('goproxy') })));
  await until('the config generation to rise', async () => (await configGeneration()) > before);
  const after = await fetchFromPod('/golang.org/x/text/@v/list');
  expect(after.code, after.headers).toBe(0);
  expect(after.body).toBe('v1.0.0\n');
  expect(backendPaths).toContain('/golang.org/x/text/@v/list'); // the goproxy preset now
  // A broken update changes nothing.
  const generation = await configGeneration();
  await kubeletSwap('{ "upstream": ');
  await new Promise((r) => setTimeout(r, 3000)); // past the watch's debounce and poll
  expect(await configGeneration()).toBe(generation);
  expect((await fetchFromPod('/golang.org/x/text/@v/list')).headers).toMatch(/x-cache: HIT/i);
});

test('SIGTERM: the proxy drains and exits 0; the sidecar deletes its table, and the pod then goes direct', async () => {
  const [backend, proxyProcess, sidecar] = children as [ChildProcess, ChildProcess, ChildProcess];
  proxyProcess.kill('SIGTERM');
  sidecar.kill('SIGTERM');
  const [[proxyCode], [sidecarCode]] = (await Promise.all([once(proxyProcess, 'exit'), once(sidecar, 'exit')])) as [[number | null], [number | null]];
  expect(proxyCode).toBe(0);
  expect(sidecarCode).toBe(0);
  expect((await node.exec(requireTool('nft'), ['list', 'table', 'ip', sidecarEnv.GPR_TABLE as string])).code).not.toBe(0);
  const direct = await pod.exec(requireTool('curl'), ['-sS', '--max-time', '2', '--resolve', `proxy.golang.org:443:${GO_HOST_ADDR}`, 'https://proxy.golang.org/'], { timeoutMs: 10_000 });
  expect(direct.code).not.toBe(0); // not redirected: the Go host address is unreachable here
  backend.kill('SIGTERM');
});
