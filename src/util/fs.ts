import { randomBytes } from 'node:crypto';
import { lstatSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from './errors.js';

/** A unique name for a temporary file: pid + random, so two processes never collide. */
export function tmpName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Write-then-rename: readers see the old file or the whole new one, never a partial one.
 * `tmpDir` must be on the same filesystem as `path` (rename is atomic only there).
 */
export async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  options: { tmpDir?: string; mode?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const dir = options.tmpDir ?? dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, tmpName('.tmp'));
  let done = false;
  try {
    options.signal?.throwIfAborted();
    const fh = await open(tmp, 'wx', options.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    options.signal?.throwIfAborted();
    await rename(tmp, path);
    done = true;
  } finally {
    if (!done) await rm(tmp, { force: true });
  }
}

/** lstat that answers undefined for a missing path (ENOENT, or a non-directory parent). */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** The synchronous twin, for walks over many entries (see util/cooperate.ts). */
export function lstatOrUndefinedSync(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
