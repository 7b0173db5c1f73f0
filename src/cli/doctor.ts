/**
 * @module cli/doctor
 * `go-proxy-rewriter doctor [--json] [--config FILE]`: runs the checks of
 * doctor/checks.ts against the proxy this config describes and prints one
 * line per check (PASS/FAIL/SKIP, what it saw, and the fix), or one JSON
 * document with --json (the Kubernetes Job and CI steps read that). Sets the
 * exit status 1 when any check FAILs.
 * Must not: change anything it checks, or call process.exit (main.ts does).
 */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.js';
import { checks, runChecks, type CheckResult } from '../doctor/checks.js';

/** Version of the --json document; bumped when a field changes meaning. */
export const DOCTOR_JSON_VERSION = 1;

/** The --json document. */
export interface DoctorReport {
  version: number;
  ok: boolean;
  summary: { pass: number; fail: number; skip: number };
  checks: CheckResult[];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Formats the results, one line per check, the fix on the same line. */
export function formatResults(results: readonly CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length));
  return results.map((r) => `${r.status}  ${r.name.padEnd(width)}  ${r.detail}${r.fix ? ` -- fix: ${r.fix}` : ''}\n`).join('');
}

export function doctorCommand(): Command {
  const command = new Command('doctor')
    .description('check the whole chain from the go command to the backend, from this host; one PASS/FAIL/SKIP line per check with the fix; exits 1 on any FAIL')
    .option('-c, --config <file>', 'the proxy\'s JSON config file (default: the embedded defaults)')
    .option('--json', 'print one JSON document instead of lines', false)
    .option('--admin-url <url>', 'base URL of the admin listener (default: from listen.admin)')
    .option('--proxy-url <url>', 'base URL to fetch through (default: GOPROXY\'s first entry when intercepted, else listen.http)')
    .option('--module <path>', 'module whose @v/list the fetch check asks for', 'golang.org/x/mod')
    .option('--samples <n>', 'fetches timed for the p50', positiveInt, 5)
    .option('--sla-ms <ms>', 'the p50 a fetch must not exceed, in ms', positiveInt, 500)
    .option('--timeout-ms <ms>', 'per network operation, in ms', positiveInt, 3000)
    .option('--skip <check...>', 'report these checks as SKIP (e.g. interception for the central Deployment)', [])
    .action(async (opts: { config?: string; json: boolean; adminUrl?: string; proxyUrl?: string; module: string; samples: number; slaMs: number; timeoutMs: number; skip: string[] }) => {
      const unknown = opts.skip.filter((name) => !checks.some((c) => c.name === name));
      if (unknown.length) command.error(`error: --skip ${unknown.join(' ')}: no such check; the checks are ${checks.map((c) => c.name).join(', ')}`);
      const config = await loadConfig(opts.config, process.env);
      const results = await runChecks({
        config,
        env: process.env,
        adminUrl: opts.adminUrl,
        proxyUrl: opts.proxyUrl,
        module: opts.module,
        samples: opts.samples,
        slaMs: opts.slaMs,
        timeoutMs: opts.timeoutMs,
        skip: opts.skip,
      });
      const count = (s: CheckResult['status']) => results.filter((r) => r.status === s).length;
      const report: DoctorReport = { version: DOCTOR_JSON_VERSION, ok: count('FAIL') === 0, summary: { pass: count('PASS'), fail: count('FAIL'), skip: count('SKIP') }, checks: results };
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatResults(results));
      if (!report.ok) process.exitCode = 1;
    });
  return command;
}
