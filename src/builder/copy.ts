/**
 * Stages the result of one COPY/ADD into an empty dir laid out like an overlay upper dir:
 * existing parents are recreated with their attributes from the rootfs view (what copy-up
 * would do), new parents are 0755 owned by the --chown user (or root). The staged dir is then
 * committed as the step's layer and adopted as its snapshot.
 */
import { chmod, chown, constants, copyFile, lchown, lstat, lutimes, mkdir, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { TsbuildError } from '../util/errors.js';
import type { RootfsView } from './rootfs.js';

export interface CopyItem {
  name: string;
  hostPath: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
  children?: () => AsyncIterable<CopyItem>;
}

export interface CopyPlan {
  staging: string;
  view: RootfsView;
  /** Absolute destination inside the rootfs. */
  dest: string;
  /** The destination names a directory (trailing slash, several sources, or an existing dir). */
  destIsDir: boolean;
  chown?: { uid: number; gid: number };
  chmod?: number;
  /** SOURCE_DATE_EPOCH: every copied node gets this mtime instead of the source's. */
  mtimeMs?: number;
  signal?: AbortSignal;
}

export async function stageCopy(items: CopyItem[], plan: CopyPlan): Promise<void> {
  const resolved = await plan.view.resolve(plan.dest, true);
  const destExistsAsDir = resolved.entry?.stat.isDirectory() ?? false;
  const intoDir = plan.destIsDir || destExistsAsDir;
  for (const item of items) {
    plan.signal?.throwIfAborted();
    if (item.kind === 'dir') {
      // The destination of a directory copy is created 0755 (chown user or root), never given
      // the source dir's attributes; an existing one is left as it is (BuildKit/fsutil).
      await ensureDir(plan, resolved.path);
      await copyChildren(plan, item, resolved.path);
    } else if (intoDir) {
      await ensureDir(plan, resolved.path);
      await copyOne(plan, item, posix.join(resolved.path, item.name));
    } else {
      await ensureDir(plan, posix.dirname(resolved.path));
      await copyOne(plan, item, resolved.path);
    }
  }
  if (items.length === 0 && plan.destIsDir) await ensureDir(plan, resolved.path);
}

async function copyChildren(plan: CopyPlan, dir: CopyItem, destDir: string): Promise<void> {
  if (dir.children === undefined) return;
  for await (const child of dir.children()) {
    plan.signal?.throwIfAborted();
    const target = posix.join(destDir, child.name);
    if (child.kind === 'dir') {
      // An existing dir (or a symlink to one) in the rootfs is merged into, as `cp -r` would.
      const existing = await plan.view.resolve(target, true);
      const where = existing.entry?.stat.isDirectory() ? existing.path : target;
      await ensureDir(plan, where, child);
      await copyChildren(plan, child, where);
    } else {
      await copyOne(plan, child, target);
    }
  }
}

/** Creates `path` and its ancestors in staging. `source` sets the attributes of `path` itself. */
async function ensureDir(plan: CopyPlan, path: string, source?: CopyItem): Promise<void> {
  const parts = path.split('/').filter((p) => p !== '');
  let current = '/';
  for (let i = 0; i < parts.length; i++) {
    current = posix.join(current, parts[i] as string);
    const host = join(plan.staging, current);
    const isTarget = i === parts.length - 1 && source !== undefined;
    const st = await lstat(host).catch(() => undefined);
    if (st !== undefined && !isTarget) {
      if (!st.isDirectory()) throw new TsbuildError('CONTEXT', `cannot copy to ${path}: ${current} is not a directory`);
      continue;
    }
    if (st === undefined) await mkdir(host, { mode: 0o755 });
    if (isTarget) {
      await applyAttrs(plan, host, source, true);
      continue;
    }
    const below = await plan.view.resolve(current, false);
    if (below.entry?.stat.isDirectory()) {
      const s = below.entry.stat;
      await chmod(host, s.mode & 0o7777);
      await chown(host, s.uid, s.gid);
    } else {
      await chmod(host, 0o755);
      await chown(host, plan.chown?.uid ?? 0, plan.chown?.gid ?? 0);
    }
  }
}

async function copyOne(plan: CopyPlan, item: CopyItem, target: string): Promise<void> {
  const host = join(plan.staging, target);
  await rm(host, { recursive: true, force: true });
  switch (item.kind) {
    case 'file':
      await copyFile(item.hostPath, host, constants.COPYFILE_FICLONE);
      break;
    case 'symlink':
      await symlink(await readlink(item.hostPath), host);
      break;
    case 'dir':
      await mkdir(host);
      break;
    case 'other':
      throw new TsbuildError('CONTEXT', `cannot copy ${item.hostPath}: unsupported file type`);
  }
  await applyAttrs(plan, host, item, item.kind !== 'symlink');
}

async function applyAttrs(plan: CopyPlan, host: string, item: CopyItem, notLink: boolean): Promise<void> {
  const uid = plan.chown?.uid ?? item.uid;
  const gid = plan.chown?.gid ?? item.gid;
  if (notLink) {
    await chown(host, uid, gid);
    // chmod after chown: chown clears setuid/setgid bits.
    await chmod(host, plan.chmod ?? item.mode & 0o7777);
    const t = (plan.mtimeMs ?? item.mtimeMs) / 1000;
    await utimes(host, t, t);
  } else {
    await lchown(host, uid, gid);
    const t = (plan.mtimeMs ?? item.mtimeMs) / 1000;
    await lutimes(host, t, t);
  }
}
