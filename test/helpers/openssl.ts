// Test helper: the real openssl command as an independent verifier (fails
// loudly when it is missing, never skips).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { requireTool } from './go.js';

const run = promisify(execFile);

/** Runs openssl; resolves with stdout+stderr, rejects on a nonzero exit. */
export async function openssl(args: string[], cwd?: string): Promise<string> {
  const { stdout, stderr } = await run(requireTool('openssl'), args, { cwd, encoding: 'utf8' });
  return stdout + stderr;
}
