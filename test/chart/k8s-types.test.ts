// Every object the chart renders, in every variant, type-checks against the
// Kubernetes API types (kubernetes-types, tsc --strict; the two custom
// resources against test/chart/crd-types.ts). And the check can fail: a copy
// of the chart with one planted mistake each (a list written as an object,
// an unknown field, a string where a port number goes) renders fine with
// helm, and tsc rejects exactly that object at that field.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartDir, render, type K8sObject } from '../helpers/helm.js';
import { typeCheck, type TypeCheckResult } from '../helpers/k8s-typecheck.js';
import { makeCaCertificate, variantOptions, variants } from './variants.js';

/** A mistake planted in a copy of the chart: the file, the text replaced, and what tsc must say. */
interface Plant {
  name: string;
  file: string;
  from: string;
  to: string;
  /** The rendered field, to show the mistake reached the object. */
  rendered: (objects: K8sObject[]) => unknown;
  expected: RegExp;
}

const daemonSetProxy = (objects: K8sObject[]) =>
  (objects.find((o) => o.kind === 'DaemonSet') as unknown as { spec: { template: { spec: { containers: Array<Record<string, unknown>> } } } }).spec.template.spec.containers[0] as Record<string, unknown>;

const plants: Plant[] = [
  {
    name: 'list-as-object',
    file: 'templates/_pod.tpl',
    from: 'capabilities:\n  drop:\n    - ALL\nseccompProfile:',
    to: 'capabilities:\n  drop:\n    ALL: true\nseccompProfile:',
    rendered: (objects) => (daemonSetProxy(objects).securityContext as { capabilities: unknown }).capabilities,
    expected: /'"ALL"' does not exist in type 'string\[\]'/,
  },
  {
    name: 'unknown-field',
    file: 'templates/_pod.tpl',
    from: 'readOnlyRootFilesystem: true\nrunAsNonRoot: true',
    to: 'readOnlyRootFileSystem: true\nrunAsNonRoot: true',
    rendered: (objects) => (daemonSetProxy(objects).securityContext as Record<string, unknown>).readOnlyRootFileSystem,
    expected: /'"readOnlyRootFileSystem"' does not exist in type 'SecurityContext'/,
  },
  {
    name: 'string-port',
    file: 'templates/_pod.tpl',
    from: 'containerPort: {{ $v.ports.admin | int }}',
    to: 'containerPort: {{ $v.ports.admin | int | quote }}',
    rendered: (objects) => (daemonSetProxy(objects).ports as Array<{ name: string; containerPort: unknown }>).find((p) => p.name === 'admin')?.containerPort,
    expected: /Type 'string' is not assignable to type 'number'/,
  },
];

let dir: string;
let results: TypeCheckResult[];
const plantedRenders = new Map<string, K8sObject[]>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gpr-chart-types-'));
  const caPem = await makeCaCertificate(dir);
  const inputs = [];
  for (const variant of variants) inputs.push({ name: variant.name, objects: await render(variantOptions(variant, caPem)) });
  inputs.push({ name: 'passthrough', objects: await render({ flags: ['--set', 'mode=deployment,ingress.enabled=true,ingress.host=proxy.golang.org,ingress.tlsMode=passthrough,doctor.cronJob.enabled=true,serviceMonitor.enabled=true'] }) });
  for (const plant of plants) {
    const copy = join(dir, `chart-${plant.name}`);
    await cp(chartDir, copy, { recursive: true });
    const path = join(copy, plant.file);
    const text = await readFile(path, 'utf8');
    if (!text.includes(plant.from)) throw new Error(`plant ${plant.name}: ${plant.file} no longer contains ${JSON.stringify(plant.from)}; update the test`);
    await writeFile(path, text.replace(plant.from, plant.to));
    const objects = await render({ chart: copy });
    plantedRenders.set(plant.name, objects);
    inputs.push({ name: `planted-${plant.name}`, objects });
  }
  results = await typeCheck(join(dir, 'ts'), inputs);
}, 180_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.each([...variants.map((v) => v.name), 'passthrough'])('every object of %s type-checks', (name) => {
  const result = results.find((r) => r.name === name);
  expect(result?.errors).toEqual([]);
});

test('the generated files hold every kind the chart can render', async () => {
  const all = (await Promise.all(results.filter((r) => !r.name.startsWith('planted-')).map((r) => readFile(r.file, 'utf8')))).join('\n');
  for (const type of ['ConfigMap', 'Service', 'DaemonSet', 'Deployment', 'Job', 'CronJob', 'PodDisruptionBudget', 'NetworkPolicy', 'Ingress', 'Certificate', 'ServiceMonitor']) {
    expect(all, type).toMatch(new RegExp(`\\)\\.${type} = \\{`));
  }
});

test.each(plants)('a planted mistake is caught: $name', async (plant) => {
  // helm renders it without complaint: only the type check sees it.
  expect(plant.rendered(plantedRenders.get(plant.name) ?? [])).toBeDefined();
  const result = results.find((r) => r.name === `planted-${plant.name}`);
  expect(result?.errors.length).toBeGreaterThan(0);
  expect(result?.errors.join('\n')).toMatch(plant.expected);
  // The error points at the DaemonSet (the generated file's line is inside its literal).
  const source = (await readFile(result?.file as string, 'utf8')).split('\n');
  const line = Number(/^\((\d+),/.exec(result?.errors[0] ?? '')?.[1]);
  const owner = source.slice(0, line).reverse().find((l) => l.startsWith('// '));
  expect(owner).toMatch(/^\/\/ DaemonSet\//);
});
