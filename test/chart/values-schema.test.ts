// Bad values are refused before anything reaches a cluster: values.schema.json
// (types, enums, unknown keys, keys the chart owns) and the chart's own
// cross-value checks (templates/_helpers.tpl gpr.validate) make `helm
// template` exit non-zero with a message naming the value.
import { expect, test } from 'vitest';
import { helm, templateArgs } from '../helpers/helm.js';

const rejected: Array<{ what: string; flags: string[]; message: RegExp }> = [
  { what: 'a negative cache size', flags: ['--set', 'config.cache.maxBytes=-1'], message: /config\.cache\.maxBytes: Must be greater than or equal to 1/ },
  { what: 'a port given as a string', flags: ['--set-json', 'ports.admin="9180"'], message: /ports\.admin: Invalid type\. Expected: integer, given: string/ },
  { what: 'a privileged port', flags: ['--set', 'ports.admin=443'], message: /ports\.admin: Must be greater than or equal to 1024/ },
  { what: 'an unknown mode', flags: ['--set', 'mode=statefulset'], message: /mode: mode must be one of the following: "daemonset", "deployment"/ },
  { what: 'a typo in a top-level key', flags: ['--set', 'interceptoin.enabled=true'], message: /Additional property interceptoin is not allowed/ },
  { what: 'listen, which the chart owns', flags: ['--set', 'config.listen.http=:80'], message: /config: Additional property listen is not allowed/ },
  { what: 'cache.dir, which cacheDisk owns', flags: ['--set', 'config.cache.dir=/x'], message: /config\.cache: Additional property dir is not allowed/ },
  { what: 'a CA key path, which the chart owns', flags: ['--set', 'config.tls.ca.key=/k'], message: /config\.tls: Additional property ca is not allowed/ },
  { what: 'an upper-case TLS host', flags: ['--set', 'config.tls.hosts[0]=Proxy.Golang.Org'], message: /config\.tls\.hosts\.0: Does not match pattern/ },
  { what: 'an unknown failure policy', flags: ['--set', 'config.onUpstreamFailure=retry'], message: /config\.onUpstreamFailure: config\.onUpstreamFailure must be one of the following: "notfound", "error"/ },
  { what: 'a private key as the bundle certificate', flags: ['--set', 'ca.certificate=-----BEGIN PRIVATE KEY-----'], message: /ca\.certificate: Does not match pattern/ },
  { what: 'a percentage minAvailable', flags: ['--set', 'podDisruptionBudget.minAvailable=50%'], message: /podDisruptionBudget\.minAvailable: Invalid type\. Expected: integer, given: string/ },
  // Cross-value checks in the templates.
  { what: 'interception without hostNetwork', flags: ['--set', 'interception.enabled=true,network.type=hostPort'], message: /interception\.enabled needs mode: daemonset with network\.type: hostNetwork/ },
  { what: 'a surge pod on a host port', flags: ['--set', 'updateStrategy.maxSurge=1'], message: /updateStrategy\.maxSurge must be 0/ },
  { what: 'an ingress in daemonset mode', flags: ['--set', 'ingress.enabled=true,ingress.host=proxy.golang.org'], message: /ingress\.enabled needs mode: deployment/ },
  {
    what: 'mutual TLS through a passthrough ingress',
    flags: ['--set', 'mode=deployment,ingress.enabled=true,ingress.host=proxy.golang.org,ingress.tlsMode=passthrough,clientCa.existingSecret=x'],
    message: /passthrough cannot be combined with clientCa: .* cannot present a client certificate/,
  },
  { what: 'an ingress host the proxy would refuse', flags: ['--set', 'mode=deployment,ingress.enabled=true,ingress.host=goproxy.corp.example'], message: /ingress\.host goproxy\.corp\.example must be listed in config\.tls\.hosts/ },
  { what: 'cert-manager without an issuer', flags: ['--set', 'ca.certManager.enabled=true'], message: /ca\.certManager\.issuerRef\.name is required/ },
  { what: 'both a BYO CA and cert-manager', flags: ['--set', 'ca.certManager.enabled=true,ca.certManager.issuerRef.name=i,ca.existingSecret=s'], message: /set either ca\.existingSecret .* or ca\.certManager\.enabled, not both/ },
];

test.each(rejected)('rejects $what', async ({ flags, message }) => {
  const result = await helm(templateArgs({ flags }));
  expect(result.code).not.toBe(0);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(message);
});

test('the same values without the mistake render', async () => {
  // Guards the table above: each rejection is the planted value, not a broken chart.
  const result = await helm(templateArgs({ flags: ['--set', 'config.cache.maxBytes=1048576,ports.admin=9181,mode=deployment,ca.certManager.enabled=true,ca.certManager.issuerRef.name=i'] }));
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('kind: Deployment');
});
