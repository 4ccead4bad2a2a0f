/**
 * Staging space. Every process gets its own `<root>/tmp/proc-<pid>-<hex>` dir (Store.tmpDir), so
 * whatever a crashed process left behind (half-written blobs, half-extracted snapshots, sandbox
 * work roots) is one dir named after a dead pid, swept on the next open. Same filesystem as the
 * store, so rename stays atomic.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../util/errors.js';
import { tmpName } from '../util/fs.js';
import { loadFsx } from '../util/native.js';

/** Names from util/fs tmpName: `<prefix>-<pid>-<hex>`. */
const OWNED = /^[a-z.]+-(\d+)-[0-9a-f]+$/;

const ownDirs = new Set<string>();
let exitHook = false;

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Marks `<root>/tmp` as a top of unrelated trees (ext4's FS_TOPDIR_FL, `chattr +T`), so the kernel
 * places each process's staging dir, and with it every file a pull extracts or a RUN writes, in a
 * lightly used block group instead of the one next to the store. Why: on ext4 without a journal the
 * inode allocator skips inodes freed in the last 60–360 s and scans for them from the start of the
 * group on every create; after a store (or a previous snapshot) of 10,000 files was deleted, each new
 * file rescanned all of them: a 400 MB pull spent 5–7 s in the kernel (perf: recently_deleted,
 * find_get_block_common) and took 6-8 s. With the flag most pulls land in a group without that
 * debris (bench pull medians 2.35-3.36 s in four runs; without it 5.26 and 5.91 s), but not all: the
 * kernel may still pick the group just emptied (a 6.33 s run right after a 6 GB prune). A hint only:
 * file systems without the flag, or a refusal, change nothing.
 */
export function spreadStaging(root: string): void {
  try {
    loadFsx()?.markTopDir?.(join(root, 'tmp'));
  } catch {
    // best effort: placement, never correctness
  }
}

/**
 * Creates this process's staging dir under `<root>/tmp`; removed when the process exits normally.
 * Synchronous calls (every command opens the store) behind a promise, so failures stay rejections.
 */
export function createProcessTmp(root: string): Promise<string> {
  return Promise.resolve().then(() => createProcessTmpNow(root));
}

function createProcessTmpNow(root: string): string {
  const dir = join(root, 'tmp', tmpName('proc'));
  mkdirSync(dir, { recursive: true });
  ownDirs.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const d of ownDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

export interface TmpEntry {
  path: string;
  /** The writer's pid, when the name carries one. */
  pid: number | undefined;
}

/** Entries of `<root>/tmp` whose writer is gone (or unknown: no pid in the name); listed synchronously, as createProcessTmp. */
export function deadTmpEntries(root: string): Promise<TmpEntry[]> {
  return Promise.resolve().then(() => deadTmpEntriesNow(root));
}

function deadTmpEntriesNow(root: string): TmpEntry[] {
  let names: string[];
  try {
    names = readdirSync(join(root, 'tmp'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: TmpEntry[] = [];
  for (const name of names.sort()) {
    const m = OWNED.exec(name);
    const pid = m?.[1] !== undefined ? Number(m[1]) : undefined;
    if (pid === undefined || !pidAlive(pid)) out.push({ path: join(root, 'tmp', name), pid });
  }
  return out;
}

/** True when a dead dir holds a sandbox work root whose state the sandbox must clean up first. */
function holdsSandboxState(dir: string, names: string[]): boolean {
  return existsSync(join(dir, 'sandbox.state')) || names.some((n) => existsSync(join(dir, n, 'sandbox.state')));
}

/**
 * Removes dead writers' debris. Entries without a pid are left alone (not ours to judge). A dead
 * dir holding a `sandbox.state` is kept unless `onDead` is given (the builder passes the sandbox's
 * cleanupStale, which kills stray step processes and cgroups recorded there).
 */
export async function sweepTmp(root: string, options: { onDead?: (dir: string) => Promise<void> } = {}): Promise<number> {
  let removed = 0;
  for (const { path, pid } of await deadTmpEntries(root)) {
    if (pid === undefined) continue;
    const names = await readdir(path).catch(() => undefined); // undefined: a file, not a dir
    if (names !== undefined && options.onDead !== undefined) await options.onDead(path);
    else if (names !== undefined && holdsSandboxState(path, names)) continue;
    await rm(path, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
