// The chart's values variants the tests render (the default and the files
// in deploy/helm/go-proxy-rewriter/ci/), and how a rendered pod's config is
// checked with the proxy's own schema. Must not: run helm (helpers/helm.ts).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Container, PodSpec, Volume } from 'kubernetes-types/core/v1.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { one, type K8sObject, type RenderOptions } from '../helpers/helm.js';
import { requireTool } from '../helpers/go.js';

/** A values variant: its name and how to render it. */
export interface Variant {
  name: string;
  valuesFiles: string[];
  /** Needs a CA certificate PEM (--set-file ca.certificate=...). */
  caCertificate?: boolean;
}

export const variants: Variant[] = [
  { name: 'default', valuesFiles: [] },
  { name: 'byo-ca', valuesFiles: ['ci/byo-ca-values.yaml'], caCertificate: true },
  { name: 'hostport', valuesFiles: ['ci/hostport-values.yaml'] },
  { name: 'upstream-chain', valuesFiles: ['ci/upstream-chain-values.yaml'] },
  { name: 'disk-hostpath', valuesFiles: ['ci/disk-hostpath-values.yaml'] },
  { name: 'deployment-ingress-mtls', valuesFiles: ['ci/deployment-ingress-mtls-values.yaml'] },
];

/** Render options of a variant; `caPem` is a file holding a CA certificate. */
export function variantOptions(variant: Variant, caPem: string): RenderOptions {
  return { valuesFiles: variant.valuesFiles, flags: variant.caCertificate ? ['--set-file', `ca.certificate=${caPem}`] : [] };
}

/** A throwaway CA certificate (public part used by the bundle ConfigMap), made by openssl. */
export async function makeCaCertificate(dir: string): Promise<string> {
  const cert = join(dir, 'ca.pem');
  await promisify(execFile)(requireTool('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', join(dir, 'ca-key.pem'), '-out', cert, '-days', '2', '-subj', '/CN=chart test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return cert;
}

/** The proxy's workload (DaemonSet or Deployment) pod spec and its proxy container. */
export function proxyPod(objects: K8sObject[]): { pod: PodSpec; proxy: Container } {
  const workload = objects.find((o) => o.kind === 'DaemonSet' || o.kind === 'Deployment');
  if (!workload) throw new Error('no DaemonSet or Deployment rendered');
  const pod = (workload as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
  const proxy = pod.containers.find((c) => c.name === 'proxy');
  if (!proxy) throw new Error('no proxy container');
  return { pod, proxy };
}

/** The raw config.json of the release's ConfigMap. */
export function renderedConfigJson(objects: K8sObject[], fullname = 'gpr-go-proxy-rewriter'): unknown {
  const cm = one<{ data: Record<string, string> }>(objects, 'ConfigMap', fullname);
  const text = cm.data['config.json'];
  if (text === undefined) throw new Error('ConfigMap has no config.json');
  return JSON.parse(text);
}

/**
 * Validates the rendered config.json with the proxy's schema and the
 * container's environment (GPR_LISTEN_* overrides, `$(HOST_IP)` = `hostIp`),
 * as `serve --config` in the pod would; throws listing every problem.
 */
export function checkRenderedConfig(raw: unknown, proxy: Container, hostIp = '10.0.0.7'): Config {
  const env: Record<string, string> = {};
  for (const e of proxy.env ?? []) if (e.value !== undefined) env[e.name] = e.value.replaceAll('$(HOST_IP)', hostIp);
  return parseConfig(raw, env, 'rendered config.json');
}

/**
 * Every file or directory the config names is inside a volume the proxy
 * container mounts, and a Secret or ConfigMap volume with `items` projects
 * that file. Returns the problems (empty when all is well).
 */
export function unmountedPaths(paths: string[], pod: PodSpec, container: Container): string[] {
  const problems: string[] = [];
  for (const path of paths) {
    const mount = (container.volumeMounts ?? []).find((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
    if (!mount) {
      problems.push(`${path}: no volume mount`);
      continue;
    }
    const volume: Volume | undefined = pod.volumes?.find((v) => v.name === mount.name);
    if (!volume) {
      problems.push(`${path}: mount ${mount.name} has no volume`);
      continue;
    }
    const rest = path.slice(mount.mountPath.length + 1);
    const items = volume.secret?.items ?? volume.configMap?.items;
    if (rest && items && !items.some((item) => item.path === rest)) problems.push(`${path}: volume ${volume.name} does not project ${rest}`);
  }
  return problems;
}
