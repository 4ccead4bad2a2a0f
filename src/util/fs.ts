import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { throwIfAborted } from './abort.js';
import { errnoCode } from './errors.js';

/** A unique name for a temporary file: pid + random, so two processes never collide. */
export function tmpName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/**
 * Up to this size writeAtomic works synchronously. Its files are small records (cache entries,
 * snapshot markers, index.json, small blobs), and six thread-pool round trips (mkdir, open, write,
 * fsync, close, rename) cost more than blocking for the calls themselves; a one-file edit build
 * writes about twenty such files.
 */
export const SYNC_WRITE_MAX = 256 * 1024;

/** writeAtomic's options. `durable: false` skips the fsync, for hint files a crash may lose (store/cache.ts). */
export interface WriteAtomicOptions {
  tmpDir?: string;
  mode?: number;
  signal?: AbortSignal;
  durable?: boolean;
}

/**
 * Write-then-rename: readers see the old file or the whole new one, never a partial one.
 * `tmpDir` must be on the same filesystem as `path` (rename is atomic only there).
 */
export async function writeAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteAtomicOptions = {},
): Promise<void> {
  if (data.length <= SYNC_WRITE_MAX) return Promise.resolve().then(() => writeAtomicSync(path, data, options));
  const dir = options.tmpDir ?? dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, tmpName('.tmp'));
  let done = false;
  try {
    options.signal?.throwIfAborted();
    const fh = await open(tmp, 'wx', options.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      if (options.durable !== false) await fh.sync();
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

/** writeAtomic's synchronous twin, for small files (see SYNC_WRITE_MAX). */
export function writeAtomicSync(path: string, data: string | Uint8Array, options: WriteAtomicOptions = {}): void {
  const dir = options.tmpDir ?? dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, tmpName('.tmp'));
  let done = false;
  try {
    options.signal?.throwIfAborted();
    const fd = openSync(tmp, 'wx', options.mode ?? 0o644);
    try {
      writeFileSync(fd, data);
      if (options.durable !== false) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    options.signal?.throwIfAborted();
    renameSync(tmp, path);
    done = true;
  } finally {
    if (!done) rmSync(tmp, { force: true });
  }
}

/**
 * The whole file when it holds at most `max` bytes, else undefined. A regular file's size is
 * checked before reading anything; anything else (a FIFO, /dev/zero, /dev/stdin) is read no
 * further than `max` + 1 bytes, so it can neither fill the heap nor keep the read going for ever.
 */
export async function readFileUpTo(path: string, max: number, signal?: AbortSignal): Promise<Buffer | undefined> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (st.isFile() && st.size > max) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    // A regular file in one read of its size (+1 to see the end); anything else in 64 KiB reads.
    const step = st.isFile() ? st.size + 1 : 64 << 10;
    for (;;) {
      throwIfAborted(signal);
      const buf = Buffer.allocUnsafe(Math.min(step, max + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      if (total > max) return undefined;
    }
  } finally {
    await fh.close();
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
