/**
 * @module bench/handshakes
 * New TLS connections per second: `connections` workers, each in a loop for
 * `durationS`: connect, full handshake (no session resumption, the chain
 * verified against the given CA), one GET with `Connection: close`, read the
 * answer to the server's close. autocannon cannot do this: its reconnectRate
 * drops the response it reconnects on from the counts.
 * Must not: reuse a TLS session or a connection (that is what is measured).
 */
import net from 'node:net';
import tls from 'node:tls';

export interface HandshakeOptions {
  host: string;
  port: number;
  servername: string;
  /** PEM of the CA the server's leaf must chain to. */
  ca: string;
  path: string;
  /** Concurrent workers. */
  connections: number;
  durationS: number;
  /** Per-connection timeout, ms: counts as an error. */
  timeoutMs: number;
}

export interface HandshakeResult {
  /** Connections that completed with a full HTTP answer. */
  requests: number;
  durationS: number;
  /** Connect to end of the answer, ms. */
  latencyMs: { p50: number; p99: number; mean: number };
  /** Connect to secureConnect, ms. */
  handshakeMs: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  /** Bytes read (TLS plaintext), answers of successful connections. */
  bytes: number;
}

/** Runs the loop; resolves once every worker finished its last connection after the deadline. */
export async function runHandshakes(o: HandshakeOptions): Promise<HandshakeResult> {
  const request = Buffer.from(`GET ${o.path} HTTP/1.1\r\nHost: ${o.servername}\r\nUser-Agent: bench-handshakes\r\nConnection: close\r\n\r\n`, 'latin1');
  const latencies: number[] = [];
  const handshakes: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let timeouts = 0;
  let bytes = 0;
  const started = performance.now();
  const deadline = started + o.durationS * 1000;

  function once(): Promise<void> {
    return new Promise((resolve) => {
      const t0 = performance.now();
      let head = '';
      let received = 0;
      let settled = false;
      const finish = (outcome: 'ok' | 'error' | 'timeout') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        tcp.destroy();
        const status = /^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1];
        if (outcome === 'ok' && status) {
          latencies.push(performance.now() - t0);
          statusCodes[status] = (statusCodes[status] ?? 0) + 1;
          bytes += received;
        } else if (outcome === 'timeout') {
          timeouts++;
          errors++;
        } else errors++;
        resolve();
      };
      const timer = setTimeout(() => finish('timeout'), o.timeoutMs);
      // TCP_NODELAY, as the go command's net/http sets on every connection.
      const tcp = net.connect({ host: o.host, port: o.port, noDelay: true });
      tcp.once('error', () => finish('error'));
      const socket = tls.connect({ socket: tcp, servername: o.servername, ca: o.ca, rejectUnauthorized: true });
      socket.once('secureConnect', () => {
        handshakes.push(performance.now() - t0);
        socket.write(request);
      });
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (head.length < 32) head += chunk.toString('latin1', 0, Math.min(chunk.length, 32));
      });
      socket.once('end', () => finish('ok'));
      socket.once('error', () => finish('error'));
      socket.once('close', () => finish('error'));
    });
  }

  async function worker(): Promise<void> {
    while (performance.now() < deadline) await once();
  }
  await Promise.all(Array.from({ length: o.connections }, worker));

  const durationS = (performance.now() - started) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  const hs = handshakes.sort((a, b) => a - b);
  const non2xx = Object.entries(statusCodes).reduce((n, [code, count]) => (code.startsWith('2') ? n : n + count), 0);
  return {
    requests: latencies.length,
    durationS,
    latencyMs: { p50: pct(sorted, 50), p99: pct(sorted, 99), mean: sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1) },
    handshakeMs: { p50: pct(hs, 50), p99: pct(hs, 99) },
    errors,
    timeouts,
    non2xx,
    statusCodes,
    bytes,
  };
}

/** Nearest-rank percentile of an ascending array; 0 for an empty one. */
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}
