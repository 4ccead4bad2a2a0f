/** Filesystem primitives for extraction that Node lacks or that must never follow symlinks. */
import { execFile } from 'node:child_process';
import { closeSync, constants, chmodSync, fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync, open, writeSync } from 'node:fs';
import { readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { loadFsx } from '../util/native.js';
import { setXattr } from '../util/xattr.js';
import { isOverlayXattr } from './changes.js';

const run = promisify(execFile);
const openAsync = promisify(open);

const S_IF = { c: 0o020000, b: 0o060000, p: 0o010000 } as const;

/**
 * mknod(2) through the fsx addon (a whiteout per deleted path adds up: mknod(1) is a process spawn
 * each), else mknod(1). The addon's call is subject to the umask, so the mode is set after.
 */
export async function mknod(path: string, kind: 'c' | 'b' | 'p', mode: number, major = 0, minor = 0): Promise<void> {
  const fail = (err: unknown): TsbuildError => new TsbuildError('LAYER', `cannot create ${kind === 'p' ? 'fifo' : 'device'} ${path}`, { cause: err, hint: 'device nodes need root' });
  const fsx = loadFsx();
  if (fsx !== undefined) {
    try {
      fsx.mknod(path, S_IF[kind] | (mode & 0o7777), major, minor);
      chmodSync(path, mode & 0o7777);
    } catch (err) {
      throw fail(err);
    }
    return;
  }
  const args = ['-m', (mode & 0o7777).toString(8), path, kind, ...(kind === 'p' ? [] : [String(major), String(minor)])];
  try {
    await run('mknod', args);
  } catch (err) {
    throw fail(err);
  }
}

/** Removes whatever is at `path` (a dir recursively) without following a symlink there. */
export async function removeAny(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}


/**
 * Creates a regular file exclusively; O_NOFOLLOW|O_EXCL refuse a symlink in the final slot.
 * Ownership, mode and mtime go through the open fd (no path walks: a layer of thousands of files
 * otherwise pays three extra lookups each), xattrs by path after it is closed.
 * Synchronous calls per chunk: a layer of thousands of small files is otherwise bound by
 * thread-pool round trips, not by the disk.
 */
export async function writeNewFile(path: string, body: AsyncIterable<Buffer>, meta: Meta): Promise<number> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const fd = await openAsync(path, flags, 0o600);
  let written = 0;
  try {
    for await (const chunk of body) {
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      written += chunk.length;
    }
    chownQuiet(() => fchownSync(fd, meta.uid, meta.gid));
    fchmodSync(fd, meta.mode & 0o7777); // after chown, which clears setuid/setgid
    futimesSync(fd, meta.mtime, meta.mtime);
  } finally {
    closeSync(fd);
  }
  applyXattrs(path, meta.xattrs);
  return written;
}

function chownQuiet(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EPERM' && code !== 'EINVAL') throw err; // rootless: keep our own ids
  }
}

export interface Meta {
  uid: number;
  gid: number;
  mode: number;
  mtime: number;
  xattrs: ReadonlyMap<string, Buffer>;
}

/** Ownership, then mode (chown clears setuid), xattrs, mtime — all on the link itself. */
export function applyMeta(path: string, isSymlink: boolean, meta: Meta, setTime: boolean): void {
  chownQuiet(() => lchownSync(path, meta.uid, meta.gid));
  if (!isSymlink) chmodSync(path, meta.mode & 0o7777);
  applyXattrs(path, meta.xattrs);
  if (setTime) lutimesSync(path, meta.mtime, meta.mtime);
}

function applyXattrs(path: string, xattrs: ReadonlyMap<string, Buffer>): void {
  for (const [name, value] of xattrs) {
    if (isOverlayXattr(name)) continue; // a layer must not forge overlay opaque/redirect markers
    try {
      setXattr(path, name, value);
    } catch {
      // Best effort, like containerd: e.g. security.selinux on a filesystem without it.
    }
  }
}

export async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

/** Removes the children of `dir` except those in `keep` (names created by the current layer). */
export async function clearDir(dir: string, keep: (name: string) => boolean): Promise<void> {
  for (const name of await readdir(dir)) if (!keep(name)) await removeAny(join(dir, name));
}
