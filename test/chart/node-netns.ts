// A build node and a pod on it, as network namespaces, for the chart's
// interception and pod tests: the node has HOST_IP on an uplink whose peer
// stays down (a connection that is not redirected goes nowhere), and the pod
// reaches the node through a veth without an address on the node side,
// routed by a /32 route and proxy ARP (Calico's layout). Needs root and
// iproute2. Must not: load firewall rules (the tests run the chart's script).
import { execTool, createNetns, type Netns } from '../helpers/netns.js';
import { requireTool } from '../helpers/go.js';

export const HOST_IP = '10.77.0.1';
export const POD_IP = '10.88.0.2';
/** An address standing in for a Go proxy host's (TEST-NET-1). */
export const GO_HOST_ADDR = '192.0.2.10';

async function ip(args: string[]): Promise<void> {
  const r = await execTool(requireTool('ip'), args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

/** Creates the node (its /etc/hosts maps `nodeHosts` to 127.0.0.1) and the pod; the caller removes both. */
export async function createNodeAndPod(nodeHosts: readonly string[]): Promise<{ node: Netns; pod: Netns }> {
  const node = await createNetns({ hosts: nodeHosts });
  const pod = await createNetns({ hosts: [] }).catch(async (err: unknown) => {
    await node.remove();
    throw err;
  });
  try {
    await ip(['-n', node.name, 'link', 'add', 'node0', 'type', 'veth', 'peer', 'name', 'node0peer']);
    await ip(['-n', node.name, 'addr', 'add', `${HOST_IP}/24`, 'dev', 'node0']);
    await ip(['-n', node.name, 'link', 'set', 'node0', 'up']);
    await ip(['-n', node.name, 'route', 'add', 'default', 'dev', 'node0']);
    await ip(['-n', pod.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'cali0', 'netns', node.name]);
    await ip(['-n', pod.name, 'addr', 'add', `${POD_IP}/32`, 'dev', 'eth0']);
    await ip(['-n', pod.name, 'link', 'set', 'eth0', 'up']);
    await ip(['-n', pod.name, 'route', 'add', '169.254.1.1', 'dev', 'eth0']);
    await ip(['-n', pod.name, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
    await ip(['-n', node.name, 'link', 'set', 'cali0', 'up']);
    await ip(['-n', node.name, 'route', 'add', POD_IP, 'dev', 'cali0']);
    // Proxy ARP answers only with forwarding on, as on every Kubernetes node.
    const sysctl = await node.exec(requireTool('sysctl'), ['-w', 'net.ipv4.conf.cali0.proxy_arp=1', 'net.ipv4.ip_forward=1']);
    if (sysctl.code !== 0) throw new Error(sysctl.stderr);
  } catch (err) {
    await pod.remove();
    await node.remove();
    throw err;
  }
  return { node, pod };
}
