/**
 * Two plain trees (not an overlay) → the change list that turns `lower` into `upper`, for
 * `changesToTar(upper, changes)`. Compared: type, content, mode, owner, xattrs, link target and
 * device numbers — never times (a touched but identical file is not a change). Deleted paths
 * become whiteouts; a directory whose every old child is gone is marked opaque instead of
 * listing a whiteout per child. A directory is re-emitted when anything beneath it changed, so
 * the layer carries its metadata (as containerd's diff does).
 */
import { lstatFile, type FileStat } from '../util/filestat.js';
import { open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { byteCompare, readXattrs, type Change } from './changes.js';

type Entry = Extract<Change, { kind: 'entry' }>;

function sameXattrs(a: ReadonlyMap<string, Buffer>, b: ReadonlyMap<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (!b.get(k)?.equals(v)) return false;
  return true;
}

const TYPE_MASK = 0o170000;

/** Byte-for-byte comparison of two files of equal size, 256 KiB at a time. */
async function sameContent(a: string, b: string, signal: AbortSignal | undefined): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.alloc(1 << 18);
    const bb = Buffer.alloc(1 << 18);
    for (;;) {
      signal?.throwIfAborted();
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, null), fb.read(bb, 0, bb.length, null)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

async function entryOf(abs: string, rel: string, st: FileStat): Promise<Entry> {
  const e: Entry = { kind: 'entry', path: rel, stat: st, opaque: false, xattrs: readXattrs(abs) };
  if (st.isSymbolicLink()) e.linkTarget = await readlink(abs);
  return e;
}

async function differs(lowAbs: string, low: FileStat, up: Entry, upAbs: string, signal: AbortSignal | undefined): Promise<boolean> {
  const st = up.stat;
  if ((low.mode & TYPE_MASK) !== (st.mode & TYPE_MASK)) return true;
  if (low.mode !== st.mode || low.uid !== st.uid || low.gid !== st.gid) return true;
  if (!sameXattrs(readXattrs(lowAbs), up.xattrs)) return true;
  if (st.isSymbolicLink()) return (await readlink(lowAbs)) !== up.linkTarget;
  if (st.isCharacterDevice() || st.isBlockDevice()) return low.rdev !== st.rdev;
  if (st.isFile()) return low.size !== st.size || !(await sameContent(lowAbs, upAbs, signal));
  return false;
}

export interface TreeDiffOptions {
  signal?: AbortSignal;
}

/** The changes from `lower` to `upper` (both plain dirs), in byte-sorted tree order. */
export async function treeChanges(lower: string, upper: string, options: TreeDiffOptions = {}): Promise<Change[]> {
  const { signal } = options;

  async function addAll(rel: string, out: Change[]): Promise<void> {
    for (const name of (await readdir(join(upper, rel))).sort(byteCompare)) {
      signal?.throwIfAborted();
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const abs = join(upper, childRel);
      const st = await lstatFile(abs);
      out.push(await entryOf(abs, childRel, st));
      if (st.isDirectory()) await addAll(childRel, out);
    }
  }

  /** Changes strictly below `rel`, which is a directory in both trees. */
  async function compareDir(rel: string, out: Change[]): Promise<{ opaque: boolean }> {
    const lowNames = (await readdir(join(lower, rel))).sort(byteCompare);
    const upNames = (await readdir(join(upper, rel))).sort(byteCompare);
    const upSet = new Set(upNames);
    const lowSet = new Set(lowNames);
    // Replaced wholesale: hide the old contents with one opaque marker instead of N whiteouts.
    if (lowNames.length > 1 && lowNames.every((n) => !upSet.has(n))) {
      await addAll(rel, out);
      return { opaque: true };
    }
    for (const name of [...new Set([...lowNames, ...upNames])].sort(byteCompare)) {
      signal?.throwIfAborted();
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const lowAbs = join(lower, childRel);
      const upAbs = join(upper, childRel);
      if (!upSet.has(name)) {
        out.push({ kind: 'whiteout', path: childRel, stat: await lstatFile(lowAbs) });
        continue;
      }
      const up = await entryOf(upAbs, childRel, await lstatFile(upAbs));
      if (!lowSet.has(name)) {
        out.push(up);
        if (up.stat.isDirectory()) await addAll(childRel, out);
        continue;
      }
      const low = await lstatFile(lowAbs);
      if (low.isDirectory() && up.stat.isDirectory()) {
        const below: Change[] = [];
        const { opaque } = await compareDir(childRel, below);
        if (opaque || below.length > 0 || (await differs(lowAbs, low, up, upAbs, signal))) {
          out.push({ ...up, opaque }, ...below);
        }
        continue;
      }
      if (!(await differs(lowAbs, low, up, upAbs, signal))) continue;
      out.push(up);
      if (up.stat.isDirectory()) await addAll(childRel, out); // a file replaced by a directory
    }
    return { opaque: false };
  }

  const out: Change[] = [];
  const { opaque } = await compareDir('', out);
  if (opaque) {
    // The root itself cannot carry an opaque marker in a tar: whiteout every old name instead.
    const whiteouts: Change[] = [];
    for (const name of (await readdir(lower)).sort(byteCompare)) whiteouts.push({ kind: 'whiteout', path: name, stat: await lstatFile(join(lower, name)) });
    return [...whiteouts, ...out];
  }
  return out;
}
