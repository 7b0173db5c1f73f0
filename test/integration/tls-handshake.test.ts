// Real TLS handshakes against certificates from src/tls: an https server on
// 127.0.0.1 port 0 whose SNICallback asks the leaf minter, checked by Node's
// tls.connect and by the real Go TLS stack (a tiny `go run` client that trusts
// only the CA), including the proof that the CA's name constraints make Go
// refuse a certificate the CA key signed for another name.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, type SecureContext, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { expect, onTestFinished, test } from 'vitest';
import { gprError } from '../../src/errors.js';
import { caPaths, initCa, loadCa, type LoadedCa } from '../../src/tls/ca.js';
import { createLeafMinter, type LeafMinter } from '../../src/tls/certs.js';
import { goEnv, requireTool, runGo, type GoResult } from '../helpers/go.js';
import { tempDir } from '../helpers/temp.js';

const run = promisify(execFile);
const HOSTS = ['proxy.golang.org', 'sum.golang.org'];
const GO_TIMEOUT_MS = 180_000;

async function newCa(): Promise<{ dir: string; ca: LoadedCa }> {
  const dir = await tempDir('gpr-tls-');
  await initCa({ dir, hosts: HOSTS });
  return { dir, ca: await loadCa(caPaths(dir)) };
}

/** An https server on 127.0.0.1:0 answering `ok <servername>`; closed after the test. */
async function startHttps(tlsOptions: { SNICallback?: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void; cert?: string; key?: string }): Promise<{ server: Server; port: number }> {
  const server = createServer({ ...tlsOptions, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' }, (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`ok ${(req.socket as TLSSocket).servername || '(no sni)'}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, port: (server.address() as AddressInfo).port };
}

function sniFrom(minter: LeafMinter) {
  return (name: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const ctx = minter.secureContext(name);
    if (ctx) cb(null, ctx);
    else cb(gprError('GPR_ERR_TLS_NAME_REFUSED', [name]));
  };
}

/** Handshake with Node's TLS client; resolves with the verified peer's SAN, rejects on a handshake error. */
function handshake(port: number, servername: string, ca: string): Promise<{ san: string | undefined; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, ca, minVersion: 'TLSv1.2' }, () => {
      resolve({ san: socket.getPeerX509Certificate()?.subjectAltName, authorized: socket.authorized });
      socket.end();
    });
    socket.once('error', reject);
  });
}

/** `openssl s_client -verify_return_error -showcerts`: its whole output, or the rejection on failure. */
async function sClient(port: number, servername: string, caFile: string): Promise<string> {
  const pending = run(requireTool('openssl'), ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-CAfile', caFile,
    '-verify_return_error', '-showcerts'], { encoding: 'utf8', timeout: 20_000 });
  pending.child.stdin?.end(); // EOF: close the connection after the handshake
  const { stdout, stderr } = await pending;
  return stdout + stderr;
}

test('Node TLS verifies a minted leaf for an allowed name and gets no handshake for another', async () => {
  const { ca } = await newCa();
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168 });
  minter.premint();
  const refused: string[] = [];
  const { server, port } = await startHttps({ SNICallback: sniFrom(minter) });
  server.on('tlsClientError', (err: Error & { code?: string }) => refused.push(err.message));

  const ok = await handshake(port, 'proxy.golang.org', ca.certPem);
  expect(ok).toMatchObject({ san: 'DNS:proxy.golang.org', authorized: true });
  expect((await handshake(port, 'SUM.golang.org', ca.certPem)).san).toBe('DNS:sum.golang.org');

  // openssl agrees, and shows the server sends the leaf alone (clients hold the CA).
  const shown = await sClient(port, 'proxy.golang.org', ca.certPath);
  expect(shown).toContain('Verify return code: 0 (ok)');
  expect(shown.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(1);

  await expect(handshake(port, 'evil.example.com', ca.certPem)).rejects.toThrow();
  await expect(sClient(port, 'evil.example.com', ca.certPath)).rejects.toThrow();
  await expect.poll(() => refused.join('\n')).toContain('TLS server name evil.example.com is not in tls.hosts');
});

test('the go command\'s TLS stack accepts a minted leaf and refuses one outside the name constraints', { timeout: GO_TIMEOUT_MS }, async () => {
  requireTool('go');
  const { dir, ca } = await newCa();
  const minter = createLeafMinter({ ca, hosts: HOSTS, leafValidityHours: 168 });
  const good = await startHttps({ SNICallback: sniFrom(minter) });

  // evil.example.com, signed with the CA key by openssl: around the minter's allowlist.
  const openssl = requireTool('openssl');
  await run(openssl, ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=evil.example.com',
    '-addext', 'subjectAltName=DNS:evil.example.com', '-addext', 'extendedKeyUsage=serverAuth',
    '-keyout', join(dir, 'evil-key.pem'), '-out', join(dir, 'evil.csr')]);
  await run(openssl, ['x509', '-req', '-in', join(dir, 'evil.csr'), '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial',
    '-copy_extensions', 'copy', '-days', '1', '-sha256', '-out', join(dir, 'evil.pem')]);
  const evil = await startHttps({ cert: await readFile(join(dir, 'evil.pem'), 'utf8'), key: await readFile(join(dir, 'evil-key.pem'), 'utf8') });

  const g = await goEnv({ goproxy: 'off' });
  onTestFinished(() => g.cleanup());
  g.env.GOFLAGS = '-mod=mod -modcacherw';
  const work = join(g.dir, 'client');
  await mkdir(work);
  await writeFile(join(work, 'go.mod'), 'module tlsclient\n\ngo 1.19\n');
  await writeFile(join(work, 'main.go'), GO_CLIENT);
  const get = (port: number, host: string): Promise<GoResult> =>
    runGo(['run', '.', ca.certPath, `127.0.0.1:${port}`, `https://${host}:${port}/`], { cwd: work, env: g.env, timeoutMs: GO_TIMEOUT_MS });

  const accepted = await get(good.port, 'proxy.golang.org');
  expect(accepted.code, accepted.stderr).toBe(0);
  expect(accepted.stdout).toBe('200 ok proxy.golang.org');

  const rejected = await get(evil.port, 'evil.example.com');
  expect(rejected.code, rejected.stdout).not.toBe(0);
  // The leaf is otherwise fine (signed by the trusted CA, SAN, serverAuth): only the
  // name constraints can refuse it, and the message says so.
  expect(rejected.stderr).toMatch(/not authorized to sign for this name: DNS name "evil\.example\.com" is not permitted by any constraint/);
});

// A client that trusts only the CA file and dials 127.0.0.1 whatever the URL's host,
// as the go command does when iptables/DNS send the Go proxy hosts to this proxy.
const GO_CLIENT = `package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	caFile, addr, url := os.Args[1], os.Args[2], os.Args[3]
	pem, err := os.ReadFile(caFile)
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fail(fmt.Errorf("no certificate in %s", caFile))
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, addr)
			},
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%d %s", resp.StatusCode, body)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
`;
