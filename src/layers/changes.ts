/**
 * Overlay upper dir → ordered change list. The upper dir already holds exactly what a step
 * changed; the lower dirs only answer "did this whited-out path exist below?" so deletions of
 * files created and removed within one step leave no trace in the layer.
 */
import type { BigIntStats } from 'node:fs';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { cooperative } from '../util/cooperate.js';
import { join } from 'node:path';
import { errnoCode } from '../util/errors.js';
import { getXattr, isOverlayOpaque, listXattrs } from '../util/xattr.js';

export type Change =
  | { kind: 'whiteout'; path: string; stat: BigIntStats }
  | {
      kind: 'entry';
      /** Relative, '/'-separated, no leading './'. */
      path: string;
      stat: BigIntStats;
      /** Overlay opaque dir: lower contents hidden (tar gets `.wh..wh..opq` after the dir). */
      opaque: boolean;
      xattrs: Map<string, Buffer>;
      linkTarget?: string;
    };

/** Overlay's own bookkeeping never belongs in a layer. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

export function isWhiteoutStat(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** True when `rel` is visible in the merged view of `lowerDirs` (top-most first). */
export async function existsBelow(rel: string, lowerDirs: string[]): Promise<boolean> {
  const parts = rel.split('/');
  for (const lower of lowerDirs) {
    let cur = lower;
    let opaqueAbove = false;
    let missing = false;
    for (const part of parts.slice(0, -1)) {
      cur = join(cur, part);
      const st = await lstatOrUndefined(cur);
      if (st === undefined) {
        missing = true;
        break;
      }
      if (isWhiteoutStat(st) || !st.isDirectory()) return false; // hidden by this layer
      if (isOverlayOpaque(cur)) opaqueAbove = true;
    }
    if (!missing) {
      const st = await lstatOrUndefined(join(lower, rel));
      if (st !== undefined) return !isWhiteoutStat(st);
    }
    if (opaqueAbove) return false; // layers further down are hidden
  }
  return false;
}

export function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A node's extended attributes, sorted by name, without overlay's own bookkeeping. */
export function readXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of listXattrs(path).sort()) {
    if (isOverlayXattr(name)) continue;
    const value = getXattr(path, name);
    if (value !== undefined) out.set(name, value);
  }
  return out;
}

/**
 * Walks `upperDir` depth-first with children in byte order. With `lowerDirs = []` the tree is a
 * plain directory (no whiteout or opaque interpretation): e.g. a rootfs or a COPY source.
 */
export async function upperDirChanges(upperDir: string, lowerDirs: string[], options: { signal?: AbortSignal } = {}): Promise<Change[]> {
  const overlay = lowerDirs.length > 0;
  const out: Change[] = [];
  const tick = cooperative();
  // Synchronous metadata calls (see util/cooperate.ts): a COPY of 30,000 files lands here whole.
  async function walk(rel: string): Promise<void> {
    const names = readdirSync(rel === '' ? upperDir : join(upperDir, rel)).sort(byteCompare);
    for (const name of names) {
      await tick(options.signal);
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = join(upperDir, childRel);
      const st = lstatSync(abs, { bigint: true });
      if (overlay && isWhiteoutStat(st)) {
        if (await existsBelow(childRel, lowerDirs)) out.push({ kind: 'whiteout', path: childRel, stat: st });
        continue;
      }
      const entry: Change = {
        kind: 'entry',
        path: childRel,
        stat: st,
        opaque: overlay && st.isDirectory() && isOverlayOpaque(abs),
        xattrs: readXattrs(abs),
      };
      if (st.isSymbolicLink()) entry.linkTarget = readlinkSync(abs);
      out.push(entry);
      if (st.isDirectory()) await walk(childRel);
    }
  }
  options.signal?.throwIfAborted();
  await walk('');
  return out;
}
