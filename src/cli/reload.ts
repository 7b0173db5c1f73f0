/**
 * @module cli/reload
 * `go-proxy-rewriter reload`: asks a running proxy to re-read its config
 * (POST /reload on its admin listener), waits for the outcome, and exits 1
 * when the config was rejected, so `systemctl reload` (ExecReload= in
 * go-proxy-rewriter.service) fails too. systemd 252 has no
 * Type=notify-reload, and with `ExecReload=kill -HUP` the job ended when kill
 * did, before the reload happened and whatever its outcome.
 * Must not: read or validate the config itself beyond finding the admin
 * address (the running proxy decides; its answer is the outcome).
 */
import { Command, InvalidArgumentError } from 'commander';
import http from 'node:http';
import { loadConfig } from '../config/load.js';
import { gprError } from '../errors.js';

/** The admin URL the proxy answers on for a `listen.admin` address: wildcards become loopback. */
export function adminUrl(listenAdmin: string): string {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(listenAdmin);
  if (!m) throw new Error(`not an address: ${listenAdmin}`);
  const v6 = m[1];
  if (v6 !== undefined) return `http://[${v6 === '::' ? '::1' : v6}]:${m[3]}`;
  const host = m[2] === '' || m[2] === '0.0.0.0' ? '127.0.0.1' : m[2];
  return `http://${host}:${m[3]}`;
}

interface Answer {
  status: number;
  body: { ok?: boolean; generation?: number; code?: string | null; message?: string };
}

/** POSTs /reload and waits for the answer, up to `timeoutMs`. */
function postReload(base: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL('/reload', base), { method: 'POST', headers: { 'content-length': 0 }, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('end', () => {
        let body: Answer['body'] = {};
        try {
          body = JSON.parse(text) as Answer['body'];
        } catch {
          body = { message: text.trim() };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

const positiveInt = (name: string) => (value: string) => {
  if (!/^[1-9]\d*$/.test(value)) throw new InvalidArgumentError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return Number(value);
};

/** Errors that mean nothing listens there (so the request never reached a proxy). */
const unreachable = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export function reloadCommand(): Command {
  return new Command('reload')
    .description('reload a running proxy (POST /reload on its admin listener); exits 1 when it rejected the config')
    .option('--admin <url>', 'admin listener URL, e.g. http://127.0.0.1:9180 (default: listen.admin of --config)')
    .option('-c, --config <file>', 'config file to take listen.admin from')
    .option('--pid <pid>', 'if the admin listener is unreachable or has no /reload, send SIGHUP to this process instead (outcome unknown)', positiveInt('--pid'))
    .option('--timeout-ms <ms>', 'how long to wait for the outcome', positiveInt('--timeout-ms'), 60_000)
    .action(async (opts: { admin?: string; config?: string; pid?: number; timeoutMs: number }) => {
      let base = opts.admin;
      if (base === undefined) {
        const listen = (await loadConfig(opts.config, process.env)).listen.admin;
        if (listen === null) throw gprError('GPR_ERR_RELOAD', ['listen.admin', 'the config has no admin listener; pass --admin URL (or --pid PID for a SIGHUP)']);
        base = adminUrl(listen);
      }
      if (!URL.canParse(base) || !/^https?:$/.test(new URL(base).protocol)) throw gprError('GPR_ERR_RELOAD', [JSON.stringify(base), '--admin must be an http:// URL like http://127.0.0.1:9180']);
      let answer: Answer;
      try {
        answer = await postReload(base, opts.timeoutMs);
      } catch (err) {
        const e = err as Error & { code?: string };
        if (opts.pid !== undefined && unreachable.has(e.code ?? '')) {
          process.kill(opts.pid, 'SIGHUP');
          process.stderr.write(`go-proxy-rewriter reload: ${base} is unreachable (${e.code}): sent SIGHUP to ${opts.pid} instead; the outcome is in its log (config reloaded / config reload failed)\n`);
          return;
        }
        throw gprError('GPR_ERR_RELOAD', [base, e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message]);
      }
      const { status, body } = answer;
      if (status === 200 && body.ok === true) {
        process.stdout.write(`reloaded: config generation ${body.generation}\n`);
        return;
      }
      // A proxy without the route (one started before an upgrade installed
      // this command, while its unit already runs it) still reloads on SIGHUP.
      if (status === 404 && opts.pid !== undefined) {
        process.kill(opts.pid, 'SIGHUP');
        process.stderr.write(`go-proxy-rewriter reload: ${base} has no POST /reload (404): sent SIGHUP to ${opts.pid} instead; the outcome is in its log\n`);
        return;
      }
      throw gprError('GPR_ERR_RELOAD', [base, `${status} ${body.code ? `${body.code}: ` : ''}${body.message ?? ''}`.trim()]);
    });
}
