/**
 * Files and directories the user names as outputs (`save -o`, `build -o type=oci|docker|tar|local`,
 * `--iidfile`, `--metadata-file`, `layer create -o`). A failed or interrupted command must leave no
 * empty or partial output and must not have truncated a file that was there before, so the output
 * is written to a temporary sibling (same filesystem, so the rename is atomic) and renamed over the
 * path only once it is complete, as docker's CLI does for `save -o`.
 */
import { createWriteStream, type Stats } from 'node:fs';
import { access, chmod, chown, constants, lstat, open, readlink, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { TsbuildError, errnoCode, messageOf } from './errors.js';
import { tmpName } from './fs.js';

/** The writer an output's producer gets: ended by the producer (stream.pipeline does) or by writeOutputFile. */
export type OutputStream = NodeJS.WritableStream;

function cannotWrite(path: string, reason: string, cause?: unknown): TsbuildError {
  return new TsbuildError('USAGE', `cannot write the output ${path}: ${reason}`, cause === undefined ? {} : { cause });
}

async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw cannotWrite(path, `${dirname(path)} is not a directory`, err);
    throw cannotWrite(path, messageOf(err), err);
  }
}

/** A missing parent directory or an unwritable one is an error before anything is written. */
async function checkParent(path: string): Promise<void> {
  const dir = dirname(path);
  const parent = await statOrUndefined(dir);
  if (parent === undefined) throw cannotWrite(path, `no such directory ${dir}`);
  if (!parent.isDirectory()) throw cannotWrite(path, `${dir} is not a directory`);
  await access(dir, constants.W_OK).catch((err: unknown) => {
    throw cannotWrite(path, messageOf(err), err);
  });
}

/**
 * Whether `path` can be written as a file output: not a directory, in an existing writable
 * directory. `build` checks its outputs with this before building, so a bad destination fails
 * before a new image is tagged.
 */
export async function checkOutputFile(path: string): Promise<void> {
  const st = await statOrUndefined(path);
  if (st?.isDirectory() === true) throw cannotWrite(path, 'it is a directory');
  if (st === undefined || st.isFile()) await checkParent(path);
}

/** The same for a directory output (`-o type=local,dest=DIR`): an existing directory, or a new one in an existing directory. */
export async function checkOutputDir(path: string): Promise<void> {
  const st = await statOrUndefined(path);
  if (st === undefined) return checkParent(path);
  if (!st.isDirectory()) throw cannotWrite(path, 'it exists and is not a directory');
}

/**
 * Runs `write` on a stream into a temporary file beside `path`, then renames it over `path`.
 * On any failure (of `write`, of the file, or an abort) the temporary file is removed and `path`
 * is left as it was. An existing regular file keeps its permissions and (when allowed) owner, as
 * writing it in place did; a symlink to one is followed. A path that exists but is not a regular
 * file (/dev/null, a FIFO, /dev/stdout) is written in place: renaming over it would replace the
 * device or pipe. No fsync: the promise is about this command failing, not about power loss, and
 * syncing multi-gigabyte archives would cost more than it guards (docker's CLI does not either).
 */
export async function writeOutputFile<T>(path: string, write: (out: OutputStream) => Promise<T>): Promise<T> {
  // Through a symlink, the file it points at is written (in its own directory), not the link.
  const target = await followLinks(path);
  const existing = await statOrUndefined(target);
  if (existing?.isDirectory() === true) throw cannotWrite(path, 'it is a directory');
  if (existing !== undefined && !existing.isFile()) return writeInPlace(path, write);
  await checkParent(target);
  const tmp = join(dirname(target), tmpName(`.${basename(target).slice(0, 64)}.tsbuild-tmp`));
  const fh = await open(tmp, 'wx', 0o666).catch((err: unknown) => {
    throw cannotWrite(path, messageOf(err), err);
  });
  let done = false;
  try {
    if (existing !== undefined) {
      await chown(tmp, existing.uid, existing.gid).catch(() => undefined); // only root may give a file away
      await chmod(tmp, existing.mode & 0o777);
    }
    const out = fh.createWriteStream();
    const result = await drive(out, write);
    await rename(tmp, target);
    done = true;
    return result;
  } finally {
    if (!done) {
      await fh.close().catch(() => undefined);
      await rm(tmp, { force: true });
    }
  }
}

/** Where writing `path` in place would write: the end of its symlink chain, which need not exist yet. */
async function followLinks(path: string): Promise<string> {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    const st = await lstat(current).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw cannotWrite(path, messageOf(err), err);
    });
    if (st?.isSymbolicLink() !== true) return current;
    current = resolve(dirname(current), await readlink(current));
  }
  throw cannotWrite(path, 'too many levels of symbolic links');
}

/** A device, FIFO or socket: opened as it is, nothing to clean up. */
async function writeInPlace<T>(path: string, write: (out: OutputStream) => Promise<T>): Promise<T> {
  const out = createWriteStream(path, { flags: 'w' });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (err) => reject(cannotWrite(path, messageOf(err), err)));
  });
  return drive(out, write);
}

/**
 * `write`, then the stream ended and flushed. An error of the stream itself (ENOSPC, EIO) fails the
 * output even when the producer did not see it: a listener is attached first, so it is never an
 * unhandled 'error' event either.
 */
async function drive<T>(out: Writable, write: (out: OutputStream) => Promise<T>): Promise<T> {
  const flushed = finished(out);
  flushed.catch(() => undefined); // awaited below; a failure before then must not be unhandled
  let result: T;
  try {
    result = await write(out);
  } catch (err) {
    out.destroy();
    throw err;
  }
  if (!out.writableEnded) out.end();
  await flushed;
  return result;
}

/**
 * A directory output (`-o type=local,dest=DIR`). A new directory is filled under a temporary
 * sibling and renamed into place when complete, so a failure leaves no half-exported tree. An
 * existing directory is written into, as buildx does; a failure there may leave part of the
 * export in it (what was there before cannot be told apart from what was added).
 */
export async function writeOutputDir(path: string, fill: (dir: string) => Promise<void>): Promise<void> {
  const existing = await statOrUndefined(path);
  if (existing !== undefined) {
    if (!existing.isDirectory()) throw cannotWrite(path, 'it exists and is not a directory');
    return fill(path);
  }
  await checkParent(path);
  const tmp = join(dirname(path), tmpName('.tsbuild-tmp'));
  let done = false;
  try {
    await fill(tmp);
    await rename(tmp, path);
    done = true;
  } finally {
    if (!done) await rm(tmp, { recursive: true, force: true });
  }
}
