/**
 * @module tls/files
 * Owns: the file operations of the TLS material: atomic writes with a given
 * mode (temp file + rename, or + link when the target must not exist yet),
 * private directories, and reads that tell "missing" from other failures.
 * Must not: parse certificates or keys, or decide what a failure means (callers
 * turn errors into GPR_ERR_* codes).
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';

/** Creates `dir` (and parents) with mode 0700 when missing; an existing directory keeps its mode. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes `data` to `path` so that readers see the old file or the new one,
 * never a part: it goes to a temporary file in the same directory (created with
 * `mode`, chmod-ed again in case the umask took bits away), is flushed, then
 * renamed over `path`. With `exclusive`, it is hard-linked instead and the call
 * fails with EEXIST when `path` exists (no check-then-write race).
 */
export async function writeFileAtomic(
  path: string,
  data: string,
  opts: { mode: number; exclusive?: boolean },
): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', opts.mode);
  try {
    await fh.chmod(opts.mode);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    if (opts.exclusive === true) {
      await link(tmp, path);
    } else {
      await rename(tmp, path);
    }
  } finally {
    // After a rename the temp name is gone already; after a link (or a failure) it is removed.
    await unlink(tmp).catch(() => undefined);
  }
}

/** The file's text, or undefined when it does not exist; other errors are thrown. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A short description of an fs error for messages: `ENOENT`, `EACCES`, ... or the message. */
export function fsErrorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return typeof e.code === 'string' ? `${e.code} (${e.message})` : String(err);
}
