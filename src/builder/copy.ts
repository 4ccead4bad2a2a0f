/**
 * Stages the result of one COPY/ADD into an empty dir laid out like an overlay upper dir:
 * existing parents are recreated with their attributes from the rootfs view (what copy-up
 * would do), new parents are 0755 owned by the --chown user (or root). The staged dir is then
 * committed as the step's layer and adopted as its snapshot.
 */
import { chmodSync, chownSync, copyFileSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, readlinkSync, rmSync, symlinkSync, utimesSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { readXattrs } from '../layers/index.js';
import { mknod } from '../layers/nodes.js';
import { setXattr } from '../util/xattr.js';
import { cooperative } from '../util/cooperate.js';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { COPY_FLAGS, FileCopier } from './copy-pool.js';
import type { CopyReuse, StagedFiles } from './copy-reuse.js';
import type { RootfsView } from './rootfs.js';

export interface CopyItem {
  name: string;
  hostPath: string;
  kind: 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  /** Device number of a char/block device (stat rdev). */
  rdev?: number;
  /** `dev:ino` of a file with several links: the copies stay hard links of each other. */
  linkKey?: string;
  /** Entries of an unpacked archive keep their modes (BuildKit ignores --chmod there). */
  keepMode?: boolean;
  /** Context files: the source's stat identity (see copy-reuse.ts); absent when unknown. */
  identity?: string;
  children?: () => AsyncIterable<CopyItem>;
}

/** `--chmod`: an absolute mode, or a symbolic one applied to each node's own mode. */
export type ChmodSpec = number | ((mode: number, isDir: boolean) => number);

export interface CopyPlan {
  staging: string;
  view: RootfsView;
  /** Absolute destination inside the rootfs. */
  dest: string;
  /** The destination names a directory (trailing slash, or an archive being unpacked). */
  destIsDir: boolean;
  chown?: { uid: number; gid: number };
  chmod?: ChmodSpec;
  /** SOURCE_DATE_EPOCH: every copied node gets this mtime instead of the source's. */
  mtimeMs?: number;
  /** The previous snapshot of this step: unchanged files are hard-linked from it. */
  reuse?: CopyReuse;
  /** Filled with staged path -> source identity, the record the next build reuses. */
  staged?: StagedFiles;
  signal?: AbortSignal;
}

interface Run extends CopyPlan {
  /** linkKey → staged host path of the first copy. */
  links: Map<string, string>;
  tick: (signal?: AbortSignal) => Promise<void>;
  /** Regular files are copied on worker threads (copy-pool.ts). */
  files: FileCopier;
  /** Directory times, set once every file inside is on disk (creating a file bumps its dir's mtime). */
  dirTimes: [string, number][];
  /**
   * Existing rootfs dirs recreated as ancestors, with their own mtime: set last, unless an entry
   * new to the rootfs was created in them (then the kernel's "now" stands, as in BuildKit).
   */
  ancestorTimes: Map<string, number>;
}

// File-system calls below are synchronous (see util/cooperate.ts): a COPY of 30,000 small files
// would otherwise spend most of its time in thread-pool round trips.

export async function stageCopy(items: CopyItem[], plan: CopyPlan): Promise<void> {
  const run: Run = { ...plan, links: new Map(), tick: cooperative(), files: new FileCopier(), dirTimes: [], ancestorTimes: new Map() };
  try {
    await stageItems(items, run);
    await run.files.drain();
    for (const [host, t] of run.ancestorTimes) utimesSync(host, t, t);
    for (const [host, t] of run.dirTimes) utimesSync(host, t, t);
  } finally {
    await run.files.settle();
  }
}

async function stageItems(items: CopyItem[], run: Run): Promise<void> {
  const resolved = await run.view.resolve(run.dest, true);
  const destExistsAsDir = resolved.entry?.stat.isDirectory() ?? false;
  const intoDir = run.destIsDir || destExistsAsDir;
  for (const item of items) {
    run.signal?.throwIfAborted();
    if (item.kind === 'dir') {
      // The destination of a directory copy is created 0755 (chown user or root), never given
      // the source dir's attributes; an existing one is left as it is (BuildKit/fsutil).
      await ensureDir(run, resolved.path);
      await copyChildren(run, item, resolved.path, destExistsAsDir);
    } else if (intoDir) {
      // Names come from readdir, a heredoc or a URL (checked by step-copy): one path component,
      // always. Checked again here because a `..` would land beside the destination, not in it.
      if (item.name === '' || item.name === '.' || item.name === '..' || item.name.includes('/') || item.name.includes('\0')) {
        throw new TsbuildError('CONTEXT', `cannot copy ${JSON.stringify(item.name)} into ${run.dest}: not a file name`);
      }
      await ensureDir(run, resolved.path);
      await copyOne(run, item, posix.join(resolved.path, item.name), destExistsAsDir);
    } else {
      await ensureDir(run, posix.dirname(resolved.path));
      await copyOne(run, item, resolved.path, true);
    }
  }
  // No items (a wildcard matching nothing) is a no-op that still makes a layer; BuildKit
  // returns before creating the destination.
}

/** `inRootfs`: `destDir` is a directory the rootfs already has (else nothing below it exists there). */
async function copyChildren(run: Run, dir: CopyItem, destDir: string, inRootfs: boolean): Promise<void> {
  if (dir.children === undefined) return;
  for await (const child of dir.children()) {
    await run.tick(run.signal);
    const target = posix.join(destDir, child.name);
    if (child.kind === 'dir') {
      // An existing dir (or a symlink to one) in the rootfs is merged into, as `cp -r` would.
      const existing = inRootfs ? await run.view.resolve(target, true) : undefined;
      const merge = existing?.entry?.stat.isDirectory() === true;
      const where = merge && existing !== undefined ? existing.path : target;
      await ensureDir(run, where, { item: child, existed: merge });
      await copyChildren(run, child, where, merge);
      // Its entries bumped its mtime: set it again last, as fsutil's copyFileInfo after the contents.
      run.dirTimes.push([join(run.staging, where), (run.mtimeMs ?? child.mtimeMs) / 1000]);
    } else {
      await copyOne(run, child, target, inRootfs);
    }
  }
}

/**
 * Creates `path` and its ancestors in staging. `target` is a copied dir: it sets the attributes of
 * `path` itself, and says whether it merges into a dir the rootfs already has (the caller resolved it).
 */
async function ensureDir(run: Run, path: string, target?: { item: CopyItem; existed: boolean }): Promise<void> {
  const parts = path.split('/').filter((p) => p !== '');
  let current = '/';
  for (let i = 0; i < parts.length; i++) {
    current = posix.join(current, parts[i] as string);
    const host = join(run.staging, current);
    const isTarget = i === parts.length - 1 && target !== undefined;
    if (run.files.pending.has(host)) await run.files.drain();
    let st = lstatSync(host, { throwIfNoEntry: false });
    if (st !== undefined && !st.isDirectory()) {
      // Staged earlier in this copy as a non-dir (e.g. an archive file, then a dir of that name).
      if (!isTarget) throw new TsbuildError('CONTEXT', `cannot copy to ${path}: ${current} is not a directory`);
      rmSync(host, { force: true });
      st = undefined;
    }
    if (st !== undefined && !isTarget) continue;
    if (isTarget) {
      if (st === undefined) {
        mkdirSync(host, { mode: 0o755 });
        if (!target.existed) newEntryIn(run, host);
      }
      applyAttrs(run, host, target.item, true);
      continue;
    }
    const below = (await run.view.resolve(current, false)).entry;
    mkdirSync(host, { mode: 0o755 });
    if (below === undefined) newEntryIn(run, host);
    if (below?.stat.isDirectory()) {
      const s = below.stat;
      chownSync(host, s.uid, s.gid);
      chmodSync(host, s.mode & 0o7777);
      run.ancestorTimes.set(host, s.mtimeMs / 1000);
    } else {
      if (below !== undefined) throw new TsbuildError('CONTEXT', `cannot copy to ${path}: ${current} is not a directory`);
      chownSync(host, run.chown?.uid ?? 0, run.chown?.gid ?? 0);
      chmodSync(host, 0o755);
    }
  }
}

function notOverDir(target: string): TsbuildError {
  return new TsbuildError('CONTEXT', `cannot replace to directory ${target} with file`);
}

/** `host` (staged) gained an entry the rootfs did not have: its directory keeps the new mtime. */
function newEntryIn(run: Run, host: string): void {
  if (run.ancestorTimes.size > 0) run.ancestorTimes.delete(dirname(host));
}

/**
 * Copies a non-directory to `target`. `mayExistBelow`: the rootfs could already have something
 * there (false inside a dir this copy creates, so 30,000 files cost no rootfs lookups).
 */
async function copyOne(run: Run, item: CopyItem, target: string, mayExistBelow: boolean): Promise<void> {
  const host = join(run.staging, target);
  // BuildKit (fsutil's ensureEmptyFileTarget) refuses to put a non-directory where a directory is.
  if (mayExistBelow && (await run.view.resolve(target, false)).entry?.stat.isDirectory() === true) throw notOverDir(target);
  newEntryIn(run, host);
  // A path queued for a worker must be on disk before anything else happens to it.
  if (run.files.pending.has(host)) await run.files.drain();
  const identity = item.kind === 'file' && item.linkKey === undefined ? item.identity : undefined;
  if (identity !== undefined && run.reuse !== undefined) {
    const at = run.reuse.find(target, identity);
    if (at !== undefined && linkFrom(run, run.reuse.dir, target, host)) {
      run.staged?.add(target, identity, at);
      return;
    }
  }
  // A later source may replace an earlier file or link at the same path, never a directory.
  const staged = lstatSync(host, { throwIfNoEntry: false });
  if (staged?.isDirectory() === true) throw notOverDir(target);
  if (staged !== undefined) {
    run.staged?.forget(target);
    rmSync(host, { force: true });
  }
  if (identity !== undefined) run.staged?.add(target, identity);
  if (item.linkKey !== undefined) {
    const first = run.links.get(item.linkKey);
    if (first !== undefined) {
      linkSync(first, host);
      return;
    }
    run.links.set(item.linkKey, host);
  }
  if (item.kind === 'file' && item.linkKey === undefined) {
    // Files without xattrs (nearly all) go to the I/O worker; the rest are copied here.
    const xattrs = sourceXattrs(item.hostPath);
    if (xattrs.size === 0) {
      await run.files.add({ src: item.hostPath, dst: host, ...attrsFor(run, item) });
      return;
    }
    copyFileSync(item.hostPath, host, COPY_FLAGS);
    applyAttrs(run, host, item, true, xattrs);
    return;
  }
  switch (item.kind) {
    case 'file':
      copyFileSync(item.hostPath, host, COPY_FLAGS);
      break;
    case 'symlink':
      symlinkSync(readlinkSync(item.hostPath), host);
      break;
    case 'dir':
      mkdirSync(host);
      break;
    case 'fifo':
      await mknod(host, 'p', item.mode);
      break;
    case 'char':
    case 'block': {
      const rdev = item.rdev ?? 0;
      // Linux dev_t encoding (glibc gnu_dev_major/minor).
      const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
      const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
      await mknod(host, item.kind === 'char' ? 'c' : 'b', item.mode, major, minor);
      break;
    }
    case 'socket':
      return; // sockets are not copied (fsutil skips them too)
  }
  applyAttrs(run, host, item, item.kind !== 'symlink');
}

/**
 * Hard-links the previous snapshot's file (a regular file there: the record and the snapshot
 * come from the same staging). Any failure (pruned meanwhile, EMLINK) means copy instead.
 */
function linkFrom(run: Run, dir: string, target: string, host: string): boolean {
  const from = join(dir, target);
  try {
    linkSync(from, host);
    return true;
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') return false;
  }
  // A later source replacing an earlier one at the same path.
  run.staged?.forget(target);
  rmSync(host, { recursive: true, force: true });
  try {
    linkSync(from, host);
    return true;
  } catch {
    return false;
  }
}

/** Owner, mode and time (seconds) a copied node gets: --chown, --chmod and SOURCE_DATE_EPOCH applied. */
function attrsFor(run: Run, item: CopyItem): { uid: number; gid: number; mode: number; time: number } {
  return { uid: run.chown?.uid ?? item.uid, gid: run.chown?.gid ?? item.gid, mode: modeFor(run.chmod, item), time: (run.mtimeMs ?? item.mtimeMs) / 1000 };
}

function applyAttrs(run: Run, host: string, item: CopyItem, notLink: boolean, xattrs?: ReadonlyMap<string, Buffer>): void {
  const { uid, gid, mode, time } = attrsFor(run, item);
  if (notLink) {
    chownSync(host, uid, gid);
    // chmod after chown: chown clears setuid/setgid bits.
    chmodSync(host, mode);
    copyXattrs(xattrs ?? sourceXattrs(item.hostPath), host);
    utimesSync(host, time, time);
  } else {
    lchownSync(host, uid, gid);
    lutimesSync(host, time, time);
  }
}

function modeFor(spec: ChmodSpec | undefined, item: CopyItem): number {
  const own = item.mode & 0o7777;
  if (spec === undefined || item.keepMode === true) return own;
  return typeof spec === 'number' ? spec : spec(own, item.kind === 'dir');
}

/** The source's extended attributes (none for sources without a host path, or unreadable ones). */
function sourceXattrs(from: string): ReadonlyMap<string, Buffer> {
  if (from === '') return new Map();
  try {
    return readXattrs(from);
  } catch {
    return new Map();
  }
}

/**
 * Extended attributes travel with the copy (fsutil does; e.g. security.capability set by a
 * `setcap` in an earlier stage). After chown, which drops capabilities. Overlay's own markers
 * are never copied; an attribute the target filesystem refuses is skipped, as containerd does.
 */
function copyXattrs(attrs: ReadonlyMap<string, Buffer>, to: string): void {
  for (const [name, value] of attrs) {
    try {
      setXattr(to, name, value);
    } catch {
      // best effort (e.g. security.selinux on a filesystem without it)
    }
  }
}
