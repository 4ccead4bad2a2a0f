/**
 * COPY/ADD sources as CopyItem trees: from the build context (uid/gid reset to 0, as the docker
 * CLI's fsutil sender does) or from a stage/image rootfs (ownership kept). `--exclude` filters
 * the trees, `--parents` wraps an item in the chain of its parent dirs, and `hashItems` digests
 * exactly what will be copied (path, type, mode, ids, content, link target; never mtime).
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hash } from 'node:crypto';
import { createIgnoreMatcher } from '../parser/index.js';
import { cooperative } from '../util/cooperate.js';
import type { BuildContext, ContextEntry } from './context.js';
import type { CopyItem } from './copy.js';
import type { FileStat } from '../util/filestat.js';
import type { RootfsView, ViewEntry } from './rootfs.js';

/** An item plus how to digest its file content (memoised for context files). */
export interface SourceItem extends CopyItem {
  digest?: () => Promise<string>;
  /** The digest when known without waiting (memo hit, small file); undefined: call `digest`. */
  digestSync?: () => string | undefined;
  /** Context dirs: the children as one array, so hashing 30,000 files is not 30,000 promises. */
  childrenSync?: () => SourceItem[];
}

/** `--exclude` patterns (dockerignore syntax), matched relative to each copied source. */
export type Excluder = (rel: string) => boolean;

export function excluder(patterns: string[]): Excluder | undefined {
  if (patterns.length === 0) return undefined;
  const m = createIgnoreMatcher(patterns.map((pattern) => ({ pattern, exclusion: false })));
  return (rel) => m.ignores(rel);
}

function kindOf(s: Stats | FileStat): CopyItem['kind'] {
  if (s.isDirectory()) return 'dir';
  if (s.isFile()) return 'file';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isCharacterDevice()) return 'char';
  if (s.isBlockDevice()) return 'block';
  return 'socket';
}

function baseItem(name: string, hostPath: string, s: Stats | FileStat, ids: { uid: number; gid: number } | undefined): SourceItem {
  const kind = kindOf(s);
  const item: SourceItem = {
    name, hostPath, kind, mode: s.mode, uid: ids?.uid ?? s.uid, gid: ids?.gid ?? s.gid, mtimeMs: s.mtimeMs,
  };
  if (kind === 'char' || kind === 'block') item.rdev = s.rdev;
  if (kind !== 'dir' && s.nlink > 1) item.linkKey = `${s.dev}:${s.ino}`;
  return item;
}

const ROOT_IDS = { uid: 0, gid: 0 };
/** Lets the event loop turn while a big context is listed synchronously (util/cooperate.ts). */
const tick = cooperative();

export function contextItem(context: BuildContext, entry: ContextEntry, exclude: Excluder | undefined, rel: string, signal?: AbortSignal): SourceItem {
  const item = baseItem(entry.rel.slice(entry.rel.lastIndexOf('/') + 1), entry.hostPath, entry.stat, ROOT_IDS);
  if (item.kind === 'file') {
    item.digest = () => context.fileDigest(entry, signal);
    item.digestSync = () => context.fileDigestSync(entry);
    item.identity = entry.stat.identity;
  }
  if (item.kind === 'dir') {
    const childrenSync = (): SourceItem[] => {
      const out: SourceItem[] = [];
      for (const child of context.childrenSync(entry)) {
        const name = child.rel.slice(child.rel.lastIndexOf('/') + 1);
        const childRel = rel === '' ? name : `${rel}/${name}`;
        if (exclude?.(childRel) !== true) out.push(contextItem(context, child, exclude, childRel, signal));
      }
      return out;
    };
    item.childrenSync = childrenSync;
    item.children = async function* () {
      for (const child of childrenSync()) {
        await tick(signal);
        yield child;
      }
    };
  }
  return item;
}

export function viewItem(view: RootfsView, e: ViewEntry, exclude: Excluder | undefined, rel: string): SourceItem {
  const item = baseItem(e.path.split('/').pop() ?? '', e.hostPath, e.stat, undefined);
  if (item.kind === 'dir') {
    item.children = async function* () {
      for (const name of await view.list(e)) {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        if (exclude?.(childRel) === true) continue;
        const child = await view.child(e, name);
        if (child !== undefined) yield viewItem(view, child, exclude, childRel);
      }
    };
  }
  return item;
}

/** A plain host dir (an unpacked archive) as an item tree; entries keep their own modes. */
export async function hostDirItem(dir: string, name: string): Promise<SourceItem> {
  const item = baseItem(name, dir, await lstat(dir), undefined);
  item.keepMode = true;
  if (item.kind === 'dir') {
    item.children = async function* () {
      for (const child of (await readdir(dir)).sort()) yield hostDirItem(join(dir, child), child);
    };
  }
  return item;
}

/**
 * `--parents`: the item nested in copies of its parent dirs (`components` relative to the
 * context root or the `/./` pivot), under a synthetic root so stageCopy copies the chain itself.
 */
export function withParents(item: SourceItem, components: string[], dirAt: (depth: number) => Promise<SourceItem>): SourceItem {
  if (components.length === 0) return item;
  const wrap = (depth: number): (() => AsyncIterable<CopyItem>) => async function* () {
    if (depth === components.length - 1) {
      yield item;
      return;
    }
    const dir = await dirAt(depth);
    yield { ...dir, name: components[depth] as string, children: wrap(depth + 1) };
  };
  return { name: '', hostPath: '', kind: 'dir', mode: 0o40755, uid: 0, gid: 0, mtimeMs: 0, children: wrap(0) };
}

/** A COPY's per-file inputs are kept for --explain-cache up to this many files (one past it: too many). */
export const EXPLAIN_FILES = 2000;
/** Characters of hash input gathered before each update. */
const HASH_BATCH = 64 * 1024;

/** Feeds the selected tree into `hash`: one line per node, files by content digest. */
export async function hashItems(hash: Hash, items: SourceItem[], signal?: AbortSignal, files?: Map<string, string>): Promise<void> {
  // Lines are fed in batches: one update per line was 30,000 native calls for a large context.
  let pending = '';
  const line = (item: SourceItem, path: string, data: string): void => {
    pending += `${path}\0${item.kind}\0${item.mode}\0${item.uid}:${item.gid}\0${data}\n`;
    if (pending.length > HASH_BATCH) {
      hash.update(pending);
      pending = '';
    }
    // Recorded (outside the key) so --explain-cache can name the file that changed.
    if (files !== undefined && files.size <= EXPLAIN_FILES) files.set(path.replace(/^\d+:/, ''), `${item.kind}:${item.mode}:${item.uid}:${item.gid}:${data}`);
  };
  const visit = async (item: SourceItem, path: string): Promise<void> => {
    signal?.throwIfAborted();
    let data = '';
    if (item.kind === 'file') data = item.digest !== undefined ? await item.digest() : '';
    else if (item.kind === 'symlink') data = await readlink(item.hostPath);
    else if (item.kind === 'char' || item.kind === 'block') data = String(item.rdev ?? 0);
    line(item, path, data);
    if (item.childrenSync !== undefined) {
      // Files answered synchronously (the warm case) cost no promise; dirs and big files recurse.
      for (const child of item.childrenSync()) {
        const known = child.kind === 'file' ? child.digestSync?.() : undefined;
        if (known !== undefined) line(child, `${path}/${child.name}`, known);
        else await visit(child, `${path}/${child.name}`);
      }
      await tick(signal);
    } else if (item.children !== undefined) for await (const child of item.children()) await visit(child, `${path}/${child.name}`);
  };
  for (const [i, item] of items.entries()) await visit(item, `${i}:${item.name}`);
  hash.update(pending);
}
