/**
 * Layer extraction, treating every tar as hostile. Paths are cleaned (`..` clamped at the root,
 * `.` entries skipped, as containerd does), parents are resolved with `resolveInRoot` (symlinks
 * followed only inside the root), the final component is never followed: whatever is there is
 * replaced, and files are created O_EXCL|O_NOFOLLOW. Hard-link targets resolve the same way and
 * must be existing non-directories inside the root.
 *
 * mode 'snapshot': whiteouts become overlay whiteouts (0/0 char device, opaque xattr) in a fresh
 * dir used as an overlay lowerdir. mode 'apply': whiteouts delete from an existing tree.
 * Whiteouts never remove what the same layer created (OCI: they apply to lower layers only).
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, symlinkSync } from 'node:fs';
import { mkdir, lutimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestFromHash, type Digest } from '../image/digest.js';
import { AbortError, isTsbuildError, messageOf, TsbuildError } from '../util/errors.js';
import { setXattr } from '../util/xattr.js';
import { autoDecompress, DEFAULT_RATIO_LIMIT } from './codec.js';
import { lstatOrUndefinedSync } from '../util/fs.js';
import { FileWriter } from './file-writer.js';
import { applyMeta, clearDir, mknod, removeAny, writeNewFile } from './nodes.js';
import { cleanComponents, resolveDirInRoot, resolveInRoot, underRoot } from './rootpath.js';
import { readTar } from './tar/reader.js';
import type { TarHeader } from './tar/header.js';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './tarball.js';

export interface ExtractLimits {
  maxEntries?: number;
  maxTotalBytes?: number;
  /** Max uncompressed/compressed ratio (decompression-bomb guard, default 200)... */
  maxRatio?: number;
  /** ...enforced once this many uncompressed bytes came out (default 64 MiB). */
  ratioAfter?: number;
}

export interface ExtractOptions {
  mode: 'snapshot' | 'apply';
  signal?: AbortSignal;
  limits?: ExtractLimits;
}

const DEFAULT_LIMITS = {
  maxEntries: 10_000_000,
  maxTotalBytes: 512 * 2 ** 30,
  maxRatio: DEFAULT_RATIO_LIMIT.maxRatio,
  ratioAfter: DEFAULT_RATIO_LIMIT.after,
};

interface Ctx {
  root: string;
  mode: 'snapshot' | 'apply';
  created: Set<string>; // rel paths this layer created, protected from its own whiteouts
  dirTimes: [string, number][];
  /**
   * Parent components already resolved (tar name's dir → resolved dir, known to be a directory):
   * the entries of one directory follow each other, and resolving every entry's parents again cost
   * an lstat per path component (~11 % of a pull's main thread). Sound because a resolution can only
   * change when something on its way is removed or replaced — a new name is never on the way of a
   * path that resolved through existing ones — so every removal empties it (removePath).
   */
  parents: Map<string, string[]>;
  /** Regular files queued for the I/O worker; see file-writer.ts for the ordering it relies on. */
  files: FileWriter;
}

/** Bounds the parent cache for a hostile tar of millions of directories. */
const MAX_CACHED_PARENTS = 1 << 16;

async function parentDir(ctx: Ctx, parts: string[]): Promise<string[]> {
  const key = parts.join('/');
  const cached = ctx.parents.get(key);
  if (cached !== undefined) return cached;
  let { resolved: parent, existingDirs } = resolveDirInRoot(ctx.root, parts);
  if (queuedOnTheWay(ctx, parent)) {
    // A file still queued for the worker would look missing (and be made a directory here).
    await ctx.files.drain();
    ({ resolved: parent, existingDirs } = resolveDirInRoot(ctx.root, parts));
  }
  let cur = underRoot(ctx.root, parent.slice(0, existingDirs)); // seen as directories just now
  for (const part of parent.slice(existingDirs)) {
    cur = join(cur, part);
    const st = lstatOrUndefinedSync(cur);
    if (st === undefined) mkdirSync(cur, { mode: 0o755 });
    else if (!st.isDirectory()) throw new TsbuildError('LAYER', `layer entry needs ${parent.join('/')} to be a directory`);
  }
  if (ctx.parents.size >= MAX_CACHED_PARENTS) ctx.parents.clear();
  ctx.parents.set(key, parent);
  return parent;
}

/** Whether a queued file sits at `parent` or any dir above it. */
function queuedOnTheWay(ctx: Ctx, parent: string[]): boolean {
  if (ctx.files.pendingCount === 0) return false;
  let cur = ctx.root;
  for (const part of parent) {
    cur = join(cur, part);
    if (ctx.files.isPending(cur)) return true;
  }
  return false;
}

/**
 * Every removal goes through here: it may take away a directory or symlink some cached parent
 * resolved through, or a file (or a dir holding files) still queued for the worker.
 */
async function removePath(ctx: Ctx, path: string): Promise<void> {
  await ctx.files.drain();
  ctx.parents.clear();
  await removeAny(path);
}

async function whiteout(ctx: Ctx, parentParts: string[], base: string): Promise<void> {
  const parent = resolveInRoot(ctx.root, parentParts, true);
  const dir = underRoot(ctx.root, parent);
  if (base === OPAQUE_WHITEOUT) {
    if (ctx.mode === 'snapshot') {
      const d = await parentDir(ctx, parentParts);
      setXattr(underRoot(ctx.root, d), 'trusted.overlay.opaque', 'y');
      return;
    }
    const st = lstatOrUndefinedSync(dir);
    const prefix = parent.length === 0 ? '' : `${parent.join('/')}/`;
    if (st?.isDirectory()) {
      await ctx.files.drain();
      ctx.parents.clear();
      await clearDir(dir, (name) => ctx.created.has(prefix + name));
    }
    return;
  }
  const name = base.slice(WHITEOUT_PREFIX.length);
  if (name === '' || name === '.' || name === '..' || name.includes('/')) {
    throw new TsbuildError('LAYER', `invalid whiteout ${JSON.stringify(base)}`);
  }
  const rel = [...parent, name].join('/');
  if (ctx.created.has(rel)) return;
  if (ctx.mode === 'apply') {
    if (lstatOrUndefinedSync(dir)?.isDirectory()) await removePath(ctx, join(dir, name));
    return;
  }
  const d = await parentDir(ctx, parentParts);
  const target = join(underRoot(ctx.root, d), name);
  await removePath(ctx, target);
  await mknod(target, 'c', 0, 0, 0);
}

async function entry(ctx: Ctx, h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
  const parts = cleanComponents(h.name);
  const base = parts.pop();
  if (base === undefined) return; // the root itself: never replaced or re-moded (CVE-2021-29136)
  if (base.startsWith(WHITEOUT_PREFIX)) return whiteout(ctx, parts, base);
  const parent = await parentDir(ctx, parts);
  const rel = [...parent, base].join('/');
  const path = join(underRoot(ctx.root, parent), base);
  if (ctx.files.isPending(path)) await ctx.files.drain(); // a duplicate entry: the queued one is what it replaces
  const existing = lstatOrUndefinedSync(path);
  const meta = { uid: h.uid, gid: h.gid, mode: h.mode, mtime: h.mtime, xattrs: h.xattrs };
  ctx.created.add(rel);
  if (h.type === 'dir') {
    if (existing !== undefined && !existing.isDirectory()) await removePath(ctx, path);
    if (existing?.isDirectory() !== true) mkdirSync(path, { mode: 0o700 });
    applyMeta(path, false, meta, false);
    ctx.dirTimes.push([path, h.mtime]);
    return;
  }
  if (h.type === 'link') {
    // Resolve the target before removing anything: it may be this very path.
    const target = underRoot(ctx.root, resolveInRoot(ctx.root, cleanComponents(h.linkname), false));
    // A target still queued for the worker must be on disk to be linked. (A queued file higher up
    // resolves as it would on disk: a regular file there makes the target missing either way.)
    if (ctx.files.isPending(target)) await ctx.files.drain();
    const st = lstatOrUndefinedSync(target);
    if (st === undefined || st.isDirectory() || target === ctx.root) {
      throw new TsbuildError('LAYER', `hard link ${h.name} → ${h.linkname}: target missing or a directory`);
    }
    if (target === path) return;
    if (existing !== undefined) await removePath(ctx, path);
    linkSync(target, path);
    return;
  }
  if (existing !== undefined) await removePath(ctx, path);
  switch (h.type) {
    case 'file': {
      if (h.xattrs.size === 0 && ctx.files.takes(h.size)) return ctx.files.add(path, h.size, body, meta);
      const written = await writeNewFile(path, body, meta);
      if (written !== h.size) throw new TsbuildError('LAYER', `short file data for ${h.name}`);
      return; // ownership, mode, xattrs and mtime are set
    }
    case 'symlink':
      symlinkSync(h.linkname, path);
      break;
    case 'char':
    case 'block':
      await mknod(path, h.type === 'char' ? 'c' : 'b', h.mode, h.devmajor, h.devminor);
      break;
    case 'fifo':
      await mknod(path, 'p', h.mode);
      break;
  }
  applyMeta(path, h.type === 'symlink', meta, true);
}

/** Any failure as a TsbuildError naming the entry, so callers see one error kind with context. */
function wrap(err: unknown, name: string | undefined): TsbuildError {
  if (isTsbuildError(err) && err.code === 'ABORTED') return err;
  const where = name === undefined ? '' : `entry ${JSON.stringify(name)}: `;
  if (isTsbuildError(err)) return new TsbuildError(err.code, `${where}${err.message}`, { cause: err, ...(err.hint === undefined ? {} : { hint: err.hint }) });
  return new TsbuildError('LAYER', `${where}${messageOf(err)}`, { cause: err });
}

/** Extracts a (gzip/zstd/plain) layer into `targetDir`; returns the diffID of the uncompressed tar. */
export async function extractLayer(source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, targetDir: string, options: ExtractOptions): Promise<{ diffId: Digest; entries: number }> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const { signal } = options;
  await mkdir(targetDir, { recursive: true });
  const hash = createHash('sha256');
  const ctx: Ctx = { root: targetDir, mode: options.mode, created: new Set(), dirTimes: [], parents: new Map(), files: new FileWriter() };
  let entries = 0;
  let current: string | undefined;
  try {
    // Every chunk is hashed, then read by readTar, whose file data is written or copied before it
    // reads on, and whose PAX values are copies: nothing here holds a chunk past the next 1 MiB.
    const { stream } = await autoDecompress(source as AsyncIterable<Uint8Array>, signal, { maxRatio: limits.maxRatio, after: limits.ratioAfter }, { reuseOutput: true });
    let total = 0;
    const hashed = (async function* () {
      for await (const chunk of stream) {
        hash.update(chunk);
        total += chunk.length;
        if (total > limits.maxTotalBytes) throw new TsbuildError('LAYER', `layer exceeds ${limits.maxTotalBytes} bytes uncompressed`);
        yield chunk;
      }
    })();
    for await (const { header, body } of readTar(hashed)) {
      signal?.throwIfAborted();
      current = header.name;
      if (++entries > limits.maxEntries) throw new TsbuildError('LAYER', `layer has more than ${limits.maxEntries} entries`);
      await entry(ctx, header, body);
      current = undefined;
    }
    await ctx.files.drain();
    // Directory times last (children changed them), deepest first.
    for (const [dir, mtime] of ctx.dirTimes.reverse()) await lutimes(dir, mtime, mtime);
  } catch (err) {
    throw wrap(signal?.aborted === true ? new AbortError(signal.reason) : err, current);
  } finally {
    await ctx.files.settle(); // the caller may remove the target next
  }
  return { diffId: digestFromHash(hash), entries };
}
