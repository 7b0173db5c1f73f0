/**
 * @module cli/certs
 * The `certs` subcommands: init (create the CA), export (print its
 * certificate and how to trust it), status (fingerprint, expiry, names).
 * Must not: start a server.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { configSchema } from '../config/schema.js';
import { caPaths, caStatus, exportCaPem, initCa, loadCa } from '../tls/ca.js';

const defaults = configSchema.parse({}).tls;

export function caCommands(): Command {
  const certs = new Command('certs').description('manage the internal CA that signs the per-host TLS certificates');

  certs
    .command('init')
    .description('create the CA (ca.pem, ca-key.pem with mode 0600) with name constraints for the allowed hosts')
    .option('-d, --dir <dir>', 'directory for the CA', defaults.dir)
    .option('--host <name...>', 'allowed host names (repeat); default the tls.hosts default', [...defaults.hosts])
    .option('--force', 'replace an existing CA (clients must then trust the new one)', false)
    .action(async (opts: { dir: string; host: string[]; force: boolean }) => {
      const made = await initCa({ dir: opts.dir, hosts: opts.host, force: opts.force });
      process.stdout.write(`created ${made.certPath}\n        ${made.keyPath} (mode 0600)\nsha256 fingerprint ${made.fingerprint256}\npermitted names: ${opts.host.join(', ')}\n`);
    });

  certs
    .command('export')
    .description('print the CA certificate (PEM) on stdout, and how to trust it on stderr')
    .option('-d, --dir <dir>', 'directory of the CA', defaults.dir)
    .action(async (opts: { dir: string }) => {
      process.stdout.write(await exportCaPem(opts.dir));
      const file = join(opts.dir, 'ca.pem');
      process.stderr.write(
        [
          '',
          'To trust this CA on a Debian/Ubuntu build host:',
          '  go-proxy-rewriter certs export > /usr/local/share/ca-certificates/go-proxy-rewriter.crt && update-ca-certificates',
          'Or for one go invocation:',
          `  SSL_CERT_FILE=${file} go mod download`,
          '',
        ].join('\n'),
      );
    });

  certs
    .command('status')
    .description("print the CA's fingerprint, expiry and permitted names")
    .option('-d, --dir <dir>', 'directory of the CA', defaults.dir)
    .action(async (opts: { dir: string }) => {
      const ca = await loadCa(caPaths(opts.dir));
      const s = caStatus(ca);
      const days = Math.floor((s.notAfter.getTime() - Date.now()) / 86_400_000);
      process.stdout.write(
        `ca:          ${ca.certPath}\nsha256:      ${s.fingerprint256}\nexpires:     ${s.notAfter.toISOString()} (${days} days)\npermitted:   ${s.permittedNames.join(', ') || '(no name constraints: every name)'}\n`,
      );
    });

  return certs;
}
