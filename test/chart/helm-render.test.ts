// The chart rendered by a real Helm 3: `helm lint --strict` and `helm
// template` for the default values and every variant in ci/, the rendered
// config.json checked with the proxy's own schema, and what each variant
// must produce. No cluster: see the chart README for what this cannot prove.
import { beforeAll, describe, expect, test } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import type { Container, PodSpec, Service } from 'kubernetes-types/core/v1.js';
import type { DaemonSet, Deployment } from 'kubernetes-types/apps/v1.js';
import type { Job, CronJob } from 'kubernetes-types/batch/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { Ingress, NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { chartDir, helm, one, render, templateArgs, type K8sObject, type RenderOptions } from '../helpers/helm.js';
import type { Certificate } from './crd-types.js';
import { checkRenderedConfig, makeCaCertificate, proxyPod, renderedConfigJson, unmountedPaths, variantOptions, variants, type Variant } from './variants.js';

let dir: string;
let caPem: string;
const rendered = new Map<string, K8sObject[]>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpr-chart-'));
  caPem = await makeCaCertificate(dir);
  for (const variant of variants) rendered.set(variant.name, await render(variantOptions(variant, caPem)));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function objectsOf(name: string): K8sObject[] {
  const objects = rendered.get(name);
  if (!objects) throw new Error(`variant ${name} was not rendered`);
  return objects;
}

function env(container: Container): Record<string, string> {
  return Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? `<from ${JSON.stringify(e.valueFrom)}>`]));
}

/** Paths the config names, from the raw JSON (keys of other branches included). */
function configPaths(raw: unknown): string[] {
  const c = raw as { tls: { dir: string; ca?: { cert: string; key: string }; clientCa?: string }; cache?: { dir?: string } };
  return [c.tls.dir, c.tls.ca?.cert, c.tls.ca?.key, c.tls.clientCa, c.cache?.dir].filter((p): p is string => typeof p === 'string');
}

test('the helm binary is a real Helm 3.17 from the devDependency', async () => {
  const result = await helm(['version', '--short']);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/^v3\.17\.\d+\+g[0-9a-f]+/);
});

describe.each(variants)('variant $name', (variant: Variant) => {
  test('helm lint --strict passes', async () => {
    const opts = variantOptions(variant, caPem);
    const args = ['lint', '--strict', chartDir, ...(opts.valuesFiles ?? []).flatMap((f) => ['--values', join(chartDir, f)]), ...(opts.flags ?? [])];
    const result = await helm(args);
    expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.code).toBe(0);
  });

  test('config.json validates with the proxy schema, and every path it names is mounted', () => {
    const objects = objectsOf(variant.name);
    const raw = renderedConfigJson(objects);
    const { pod, proxy } = proxyPod(objects);
    const config = checkRenderedConfig(raw, proxy);
    if (variant.name === 'default') expect(config.reload.watch).toBe(true);
    if (variant.name === 'deployment-ingress-mtls') expect(config.tls.clientCa).toBe('/etc/go-proxy-rewriter-client-ca/ca.crt');
    expect(unmountedPaths(configPaths(raw), pod, proxy)).toEqual([]);
    // The probes and the admin listener agree.
    const adminPort = proxy.ports?.find((p) => p.name === 'admin')?.containerPort;
    expect(config.listen.admin).toMatch(new RegExp(`:${adminPort}$`));
    expect(proxy.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(proxy.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    // The chart never lets the proxy make its own CA: a CA is always configured.
    expect((raw as { tls: { ca: { cert: string } } }).tls.ca.cert).toBe('/etc/go-proxy-rewriter-ca/tls.crt');
  });

  test('pod and containers run hardened', () => {
    const { pod } = proxyPod(objectsOf(variant.name));
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      expect(c.securityContext?.readOnlyRootFilesystem, c.name).toBe(true);
      expect(c.securityContext?.allowPrivilegeEscalation, c.name).toBe(false);
      expect(c.securityContext?.capabilities?.drop, c.name).toEqual(['ALL']);
      expect(c.securityContext?.seccompProfile, c.name).toEqual({ type: 'RuntimeDefault' });
      expect(c.securityContext?.privileged, c.name).toBeUndefined();
      // Root only for the two helpers, each with the one capability it needs.
      if (c.name === 'proxy') expect(c.securityContext?.capabilities?.add).toBeUndefined();
      if (c.securityContext?.runAsUser === 0) expect(c.securityContext.capabilities?.add, c.name).toEqual(c.name === 'intercept' ? ['NET_ADMIN'] : ['CHOWN']);
    }
  });
});

test('default: a DaemonSet on the host network, bound to the node address, with a derived memory limit', () => {
  const objects = objectsOf('default');
  expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'DaemonSet', 'Job', 'NetworkPolicy', 'PodDisruptionBudget', 'Service']);
  const ds = one<DaemonSet>(objects, 'DaemonSet');
  const pod = ds.spec?.template.spec as PodSpec;
  expect(pod.hostNetwork).toBe(true);
  expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
  expect(ds.spec?.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  // drainTimeoutMs 30 s + 10 s
  expect(pod.terminationGracePeriodSeconds).toBe(40);
  const { proxy } = proxyPod(objects);
  // 256 MiB memory cache + 192 MiB overhead
  expect(proxy.resources?.limits?.memory).toBe('448Mi');
  expect(proxy.resources?.requests?.memory).toBe('448Mi');
  const config = checkRenderedConfig(renderedConfigJson(objects), proxy, '10.1.2.3');
  expect(config.listen).toEqual({ http: '10.1.2.3:8080', https: '10.1.2.3:8443', admin: '10.1.2.3:9180' });
  expect(env(proxy).HOST_IP).toContain('status.hostIP');
  expect(config.upstream).toBe('http://go-cache.internal:3000');
  expect(config.rewrite).toBe('internal');
  // reload.watch is on (a kubelet ConfigMap swap reloads), so no checksum annotation rolls the pods.
  expect((renderedConfigJson(objects) as { reload: unknown }).reload).toEqual({ watch: true });
  expect(ds.spec?.template.metadata?.annotations?.['checksum/config']).toBeUndefined();
  // The config volume is a directory mount (subPath would never see kubelet's update).
  expect(proxy.volumeMounts?.find((m) => m.name === 'config')).toEqual({ name: 'config', mountPath: '/etc/go-proxy-rewriter', readOnly: true });
  // Memory only, said explicitly: the proxy's default would be cache/ in its read-only working directory.
  expect(config.cache.dir).toBeNull();

  const pdb = one<PodDisruptionBudget>(objects, 'PodDisruptionBudget');
  expect(pdb.spec).toMatchObject({ minAvailable: 1 });
  expect(pdb.spec?.maxUnavailable).toBeUndefined();

  const admin = one<Service>(objects, 'Service', 'gpr-go-proxy-rewriter-admin');
  expect(admin.metadata?.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9180', 'prometheus.io/path': '/metrics' });
  expect(admin.spec?.ports).toEqual([{ name: 'admin', port: 9180, targetPort: 'admin', protocol: 'TCP' }]);
  expect(admin.spec?.selector).toEqual(ds.spec?.selector.matchLabels);

  const np = one<NetworkPolicy>(objects, 'NetworkPolicy');
  expect(np.spec?.podSelector).toEqual(ds.spec?.selector);
  expect(np.spec?.policyTypes).toEqual(['Ingress']);
  const rules = np.spec?.ingress ?? [];
  expect(rules[0]?.from).toEqual([
    { namespaceSelector: { matchLabels: { 'go-proxy-rewriter.io/tenant': 'gpr' } }, podSelector: { matchLabels: { 'go-proxy-rewriter.io/client': 'true' } } },
  ]);
  expect(rules[0]?.ports?.map((p) => p.port)).toEqual([8080, 8443]);
  // Prometheus: the admin port only.
  expect(rules[2]?.ports).toEqual([{ protocol: 'TCP', port: 9180 }]);

  const job = one<Job>(objects, 'Job');
  expect(job.metadata?.annotations?.['helm.sh/hook']).toBe('test');
  const doctor = job.spec?.template.spec?.containers[0] as Container;
  // No interception and no CA bundle: those two checks do not apply to these build pods.
  expect(doctor.args).toEqual(['doctor', '--json', '--config', '/etc/go-proxy-rewriter/config.json', '--skip', 'interception', 'trust']);
  expect(env(doctor)).toMatchObject({ GPR_LISTEN_ADMIN: '$(HOST_IP):9180', GPR_LISTEN_HTTPS: '$(HOST_IP):8443' });
  // The doctor gets the CA certificate, never its key; its pods are not the proxy's.
  expect(job.spec?.template.spec?.volumes?.find((v) => v.name === 'ca')?.secret?.items).toEqual([{ key: 'tls.crt', path: 'tls.crt' }]);
  expect(job.spec?.template.metadata?.labels?.['app.kubernetes.io/component']).toBe('doctor');
});

test('byo-ca: the Secret is mounted, the CA bundle lands in each build namespace, interception runs as a sidecar', async () => {
  const objects = objectsOf('byo-ca');
  const pem = (await readFile(caPem, 'utf8')).trim();
  const { pod, proxy } = proxyPod(objects);
  expect(pod.volumes?.find((v) => v.name === 'ca')?.secret?.secretName).toBe('corp-goproxy-ca');
  const bundles = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.name === 'gpr-go-proxy-rewriter-ca-bundle');
  expect(bundles.map((b) => b.metadata.namespace)).toEqual(['build-proxy', 'builds-a', 'builds-a-nightly']);
  for (const b of bundles) expect(((b as unknown as { data: Record<string, string> }).data['ca.crt'] ?? '').trim()).toBe(pem);
  expect(bundles.every((b) => !JSON.stringify(b).includes('PRIVATE KEY'))).toBe(true);

  const intercept = pod.containers.find((c) => c.name === 'intercept') as Container;
  expect(intercept.command).toEqual(['bash', '/opt/go-proxy-rewriter-intercept/intercept.sh', 'sidecar']);
  expect(env(intercept)).toMatchObject({
    GPR_HOSTS: 'proxy.golang.org goproxy.cn goproxy.io sum.golang.org',
    GPR_HTTPS_PORT: '8443',
    GPR_BYPASS_UIDS: '10001',
    GPR_EXTRA_ADDRESSES: '142.250.0.0/15',
    GPR_TABLE: 'go_proxy_rewriter_gpr_go_proxy_rewriter',
  });
  expect(env(proxy).GPR_LISTEN_HTTPS).toBe('$(HOST_IP):8443');
  expect(pod.nodeSelector).toEqual({ 'node-role.example.com/build': 'true' });
  expect(pod.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'build', effect: 'NoSchedule' }]);
  expect(pod.priorityClassName).toBe('system-node-critical');
  expect(objects.some((o) => o.kind === 'ServiceMonitor')).toBe(true);

  const cron = one<CronJob>(objects, 'CronJob');
  const doctor = cron.spec?.jobTemplate.spec?.template.spec?.containers[0] as Container;
  expect(env(doctor).SSL_CERT_FILE).toBe('/etc/go-proxy-rewriter-ca-bundle/ca.crt');
  expect(doctor.args).not.toContain('--skip'); // intercepted and trusted: every check applies
  expect(cron.spec?.jobTemplate.spec?.template.spec?.nodeSelector).toEqual(pod.nodeSelector);
  // Tenant label on everything.
  expect(objects.every((o) => o.metadata.labels?.['go-proxy-rewriter.io/tenant'] === 'team-a')).toBe(true);
});

test('hostport: own network namespace, ports published on the node address, config changes roll the pods', () => {
  const objects = objectsOf('hostport');
  const { pod, proxy } = proxyPod(objects);
  expect(pod.hostNetwork).toBeUndefined();
  expect(proxy.ports).toEqual([
    { name: 'http', containerPort: 8080, protocol: 'TCP', hostPort: 8080, hostIP: '169.254.25.10' },
    { name: 'admin', containerPort: 9180, protocol: 'TCP', hostPort: 9180, hostIP: '169.254.25.10' },
  ]);
  expect(proxy.env).toBeUndefined();
  const raw = renderedConfigJson(objects);
  const config = checkRenderedConfig(raw, proxy);
  expect(config.listen).toEqual({ http: ':8080', https: null, admin: ':9180' });
  expect((raw as { reload?: unknown }).reload).toBeUndefined();
  const ds = one<DaemonSet>(objects, 'DaemonSet');
  expect(ds.spec?.template.metadata?.annotations?.['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
  const job = one<Job>(objects, 'Job');
  expect(env(job.spec?.template.spec?.containers[0] as Container)).toMatchObject({ GPR_LISTEN_HTTP: '$(HOST_IP):8080', GPR_LISTEN_HTTPS: '', GPR_LISTEN_ADMIN: '$(HOST_IP):9180' });
});

test('upstream-chain: the backend, templates and failure policy reach config.json unchanged', () => {
  const objects = objectsOf('upstream-chain');
  const config = checkRenderedConfig(renderedConfigJson(objects), proxyPod(objects).proxy);
  expect(config.upstream).toBe('https://artifactory.corp.example/api/go/go-remote');
  expect(config.rewrite).toEqual({
    list: '/{module}/@v/list',
    latest: '/{module}/@latest',
    info: '/{module}/@v/{version}.info',
    mod: '/{module}/@v/{version}.mod',
    zip: '/{module}/@v/{version}.zip',
    sumdb: '/sumdb/{name}/{path}',
  });
  expect(config.onUpstreamFailure).toBe('error');
  expect(config.timeouts).toEqual({ connectMs: 2000, responseMs: 15000 });
  expect(config.log.level).toBe('warn');
});

test('disk-hostpath: the disk tier on the node, handed to the proxy user, and interception by an init container', () => {
  const objects = objectsOf('disk-hostpath');
  const { pod, proxy } = proxyPod(objects);
  const raw = renderedConfigJson(objects) as { cache: Record<string, unknown> };
  expect(raw.cache).toEqual({ maxBytes: 1073741824, maxEntryBytes: 67108864, mutableTtlMs: 60000, notFoundTtlMs: 30000, dir: '/var/cache/go-proxy-rewriter', diskMaxBytes: 53687091200, maxObjectBytes: 536870912 });
  expect(checkRenderedConfig(raw, proxy).cache).toMatchObject({ dir: '/var/cache/go-proxy-rewriter', diskMaxBytes: 53687091200, maxObjectBytes: 536870912 });
  expect(pod.volumes?.find((v) => v.name === 'cache')?.hostPath).toEqual({ path: '/var/cache/go-proxy-rewriter', type: 'DirectoryOrCreate' });
  expect(pod.initContainers?.map((c) => c.name)).toEqual(['cache-dir-owner', 'intercept']);
  expect(pod.initContainers?.[0]?.command).toEqual(['chown', '10001:10001', '/var/cache/go-proxy-rewriter']);
  expect(pod.initContainers?.[1]?.command?.at(-1)).toBe('apply');
  expect(pod.containers.map((c) => c.name)).toEqual(['proxy']);
  // 1 GiB memory tier + 192 MiB; the disk tier lives on the node's disk, not in memory.
  expect(proxy.resources?.limits?.memory).toBe('1216Mi');
});

test('deployment-ingress-mtls: Deployment, Service, re-encrypting Ingress with a client certificate, tls.clientCa', () => {
  const objects = objectsOf('deployment-ingress-mtls');
  expect(objects.map((o) => o.kind).sort()).toEqual(['Certificate', 'ConfigMap', 'Deployment', 'Ingress', 'Job', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'Service']);
  const deploy = one<Deployment>(objects, 'Deployment');
  expect(deploy.spec?.replicas).toBe(3);
  const { pod, proxy } = proxyPod(objects);
  expect(pod.hostNetwork).toBeUndefined();
  const raw = renderedConfigJson(objects) as { tls: Record<string, unknown> };
  expect(raw.tls.clientCa).toBe('/etc/go-proxy-rewriter-client-ca/ca.crt');
  expect(pod.volumes?.find((v) => v.name === 'client-ca')?.secret?.secretName).toBe('team-b-ingress-client-ca');
  const config = checkRenderedConfig(raw, proxy);
  expect(config.listen).toEqual({ http: null, https: ':8443', admin: ':9180' });
  // emptyDir disk tier: 20 GiB + one 512 MiB object being spooled
  expect(pod.volumes?.find((v) => v.name === 'cache')?.emptyDir).toEqual({ sizeLimit: '20992Mi' });

  const svc = one<Service>(objects, 'Service', 'gpr-go-proxy-rewriter');
  expect(svc.spec?.ports).toEqual([{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
  const ingress = one<Ingress>(objects, 'Ingress');
  expect(ingress.metadata?.annotations).toMatchObject({
    'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS',
    'nginx.ingress.kubernetes.io/proxy-ssl-name': 'goproxy.team-b.corp.example',
    'nginx.ingress.kubernetes.io/proxy-ssl-secret': 'ingress-nginx/goproxy-team-b-client',
    'nginx.ingress.kubernetes.io/proxy-ssl-verify': 'on',
  });
  expect(ingress.spec?.rules?.[0]?.http?.paths[0]?.backend.service).toEqual({ name: 'gpr-go-proxy-rewriter', port: { name: 'https' } });
  const pdb = one<PodDisruptionBudget>(objects, 'PodDisruptionBudget');
  expect(pdb.spec?.maxUnavailable).toBe(1);
  const cert = one<Certificate>(objects, 'Certificate');
  expect(cert.spec).toMatchObject({ isCA: true, secretName: 'gpr-go-proxy-rewriter-ca', issuerRef: { name: 'corp-root', kind: 'ClusterIssuer' } });
  expect(cert.spec.nameConstraints?.permitted?.dnsDomains).toEqual(['goproxy.team-b.corp.example']);
  // The ingress controller may reach the HTTPS port.
  const np = one<NetworkPolicy>(objects, 'NetworkPolicy');
  expect(np.spec?.ingress?.at(-1)).toEqual({ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }], ports: [{ protocol: 'TCP', port: 8443 }] });
  const job = one<Job>(objects, 'Job');
  expect(env(job.spec?.template.spec?.containers[0] as Container)).toMatchObject({ GPR_LISTEN_HTTPS: 'gpr-go-proxy-rewriter.build-proxy.svc:443', GPR_LISTEN_ADMIN: 'gpr-go-proxy-rewriter-admin.build-proxy.svc:9180' });
});

test('passthrough ingress renders without the mutual-TLS annotations', async () => {
  const objects = await render({ flags: ['--set', 'mode=deployment,ingress.enabled=true,ingress.host=proxy.golang.org,ingress.tlsMode=passthrough'] });
  const ingress = one<Ingress>(objects, 'Ingress');
  expect(ingress.metadata?.annotations).toEqual({ 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true' });
  expect(ingress.spec?.tls).toBeUndefined();
});

test('two tenants: two releases in two namespaces share no object and select only their own pods', async () => {
  const a = await render({ release: 'ta', namespace: 'tenant-a', flags: ['--set', 'tenant.id=a'] });
  const b = await render({ release: 'tb', namespace: 'tenant-b', flags: ['--set', 'tenant.id=b'] });
  const ids = (objs: K8sObject[]) => objs.map((o) => `${o.metadata.namespace}/${o.kind}/${o.metadata.name}`);
  expect(ids(a).filter((id) => ids(b).includes(id))).toEqual([]);
  expect(a.every((o) => o.metadata.namespace === 'tenant-a')).toBe(true);
  const npA = one<NetworkPolicy>(a, 'NetworkPolicy');
  expect(npA.spec?.ingress?.[0]?.from?.[0]?.namespaceSelector).toEqual({ matchLabels: { 'go-proxy-rewriter.io/tenant': 'a' } });
  expect(npA.spec?.podSelector.matchLabels?.['app.kubernetes.io/instance']).toBe('ta');
  // Each its own config and CA Secret.
  const caSecret = (objs: K8sObject[]) => proxyPod(objs).pod.volumes?.find((v) => v.name === 'ca')?.secret?.secretName;
  expect([caSecret(a), caSecret(b)]).toEqual(['ta-go-proxy-rewriter-ca', 'tb-go-proxy-rewriter-ca']);
  expect(proxyPod(a).pod.volumes?.find((v) => v.name === 'config')?.configMap?.name).toBe('ta-go-proxy-rewriter');
});

test('an upstream chain (GOPROXY-style list, or entries) passes the values schema and reaches config.json verbatim', async () => {
  // The proxy's schema for the chain comes with the upstreams branch; here the chart's side: no reshaping.
  const list = 'http://go-cache.internal:3000,https://mirror.corp.example|https://proxy.golang.org';
  const entries = [{ url: 'http://go-cache.internal:3000', fallThrough: 'error', rewrite: 'internal' }, { url: 'https://proxy.golang.org', rewrite: 'goproxy' }];
  for (const upstream of [list, entries]) {
    const objects = await render({ flags: ['--set-json', `config.upstream=${JSON.stringify(upstream)}`] });
    expect((renderedConfigJson(objects) as { upstream: unknown }).upstream).toEqual(upstream);
  }
});

test('renders for the oldest Kubernetes the chart claims (kubeVersion >=1.25)', async () => {
  const old = await helm(['lint', '--strict', chartDir, '--kube-version', '1.25.0']);
  expect(old.stdout).toContain('0 chart(s) failed');
  const older = await helm(templateArgs({ flags: ['--kube-version', '1.24.0'] }));
  expect(older.code).not.toBe(0);
  expect(older.stderr).toMatch(/chart requires kubeVersion: >=1\.25\.0-0 which is incompatible with Kubernetes v1\.24\.0/);
});

test('NOTES.txt tells each mode what to do next', async () => {
  // helm template does not render NOTES.txt: render it as a template of a copy of the chart.
  const copy = join(dir, 'chart-notes');
  await cp(chartDir, copy, { recursive: true });
  const notes = await readFile(join(copy, 'templates/NOTES.txt'), 'utf8');
  await writeFile(join(copy, 'templates/notes-as-configmap.yaml'), `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n${notes.split('\n').map((l) => `    ${l}`).join('\n')}\n`);
  const text = async (opts: RenderOptions) => one<{ data: { notes: string } }>(await render({ ...opts, chart: copy }), 'ConfigMap', 'notes').data.notes;
  const daemonset = await text({});
  expect(daemonset).toContain('kubectl -n build-proxy create secret tls gpr-go-proxy-rewriter-ca');
  expect(daemonset).toContain('GOPROXY=http://$(HOST_IP):8080,direct');
  expect(daemonset).toContain('helm test gpr -n build-proxy');
  const intercepted = await text({ ...variantOptions(variants[1] as Variant, caPem), chart: copy });
  expect(intercepted).toContain('keep the default GOPROXY');
  expect(intercepted).toContain('mount ConfigMap gpr-go-proxy-rewriter-ca-bundle and set SSL_CERT_FILE');
  const central = await text({ valuesFiles: ['ci/deployment-ingress-mtls-values.yaml'] });
  expect(central).toContain('cert-manager issues the CA into Secret gpr-go-proxy-rewriter-ca (issuer ClusterIssuer/corp-root)');
  expect(central).toContain('GOPROXY=https://goproxy.team-b.corp.example (through the ingress: the proxy requires a client certificate)');
});
