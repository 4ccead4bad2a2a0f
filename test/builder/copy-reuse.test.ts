/**
 * Incremental COPY (src/builder/copy-reuse.ts): after a context change, the rebuilt COPY layer
 * must equal, byte for byte (same diffID), the layer of a genuine rebuild (--no-cache, which
 * reuses nothing), whatever changed; and unchanged files must come from the previous snapshot.
 * The copy goes to `/` so that no dir in the layer is created by the step itself (a created
 * destination gets the build's time, as in BuildKit, and two builds may straddle a second).
 */
import { appendFile, chmod, lstat, mkdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { imageOf, runBuild, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

const FILES: Record<string, string> = {
  Dockerfile: 'FROM busybox:local\nCOPY . /\n',
  'a.txt': 'A\n',
  'b.txt': 'B\n',
  'd1/x': 'one\n',
  'd2/x': 'two\n',
  'deep/sub/y': 'Y\n',
};

let ctx = '';

/** The COPY layer's diffID and snapshot path of a build of `ctx`. */
async function copyLayer(noCache = false): Promise<{ diffId: string; dir: string }> {
  const { result } = await runBuild(fx.store, { contextDir: ctx, noCache });
  const { config } = await imageOf(fx.store, result.manifestDigest);
  const diffId = config.rootfs.diff_ids.at(-1) as (typeof config.rootfs.diff_ids)[number];
  return { diffId, dir: fx.store.snapshots.path(diffId) };
}

/** Builds incrementally, then from scratch; both layers must be the same bytes. */
async function rebuildMatchesCold(): Promise<{ diffId: string; dir: string }> {
  const incremental = await copyLayer();
  const cold = await copyLayer(true);
  expect(incremental.diffId).toBe(cold.diffId);
  return incremental;
}

async function ino(path: string): Promise<number> {
  return (await lstat(path)).ino;
}

describe('incremental COPY', () => {
  beforeAll(async () => {
    ctx = await fx.ctx(FILES);
    await copyLayer();
  });

  it('an edited file: the layer equals a cold build and unchanged files share the old snapshot inodes', async () => {
    const before = await copyLayer();
    await appendFile(join(ctx, 'a.txt'), 'more\n');
    const after = await rebuildMatchesCold();
    expect(after.diffId).not.toBe(before.diffId);
    expect(await ino(join(after.dir, 'b.txt'))).toBe(await ino(join(before.dir, 'b.txt')));
    expect(await ino(join(after.dir, 'deep/sub/y'))).toBe(await ino(join(before.dir, 'deep/sub/y')));
    expect(await ino(join(after.dir, 'a.txt'))).not.toBe(await ino(join(before.dir, 'a.txt')));
  });

  it('a deleted file and an added file', async () => {
    await rm(join(ctx, 'b.txt'));
    await writeFile(join(ctx, 'deep/new.txt'), 'new\n');
    const after = await rebuildMatchesCold();
    await expect(lstat(join(after.dir, 'b.txt'))).rejects.toThrow(/ENOENT/);
    expect((await lstat(join(after.dir, 'deep/new.txt'))).size).toBe(4);
  });

  it('a mode change and an mtime-only change', async () => {
    await chmod(join(ctx, 'd1/x'), 0o755);
    await utimes(join(ctx, 'd2/x'), new Date('2001-01-01T00:00:00Z'), new Date('2001-01-01T00:00:00Z'));
    const after = await rebuildMatchesCold();
    expect((await lstat(join(after.dir, 'd1/x'))).mode & 0o777).toBe(0o755);
    expect((await lstat(join(after.dir, 'd2/x'))).mtime.toISOString()).toBe('2001-01-01T00:00:00.000Z');
  });

  it('swapped directories: same names and sizes, different files', async () => {
    await rename(join(ctx, 'd1'), join(ctx, 'tmp'));
    await rename(join(ctx, 'd2'), join(ctx, 'd1'));
    await rename(join(ctx, 'tmp'), join(ctx, 'd2'));
    await rebuildMatchesCold();
  });

  it('a symlink retargeted and a file replaced by a dir', async () => {
    await symlink('a.txt', join(ctx, 'link'));
    await copyLayer();
    await rm(join(ctx, 'link'));
    await symlink('d1/x', join(ctx, 'link'));
    await rm(join(ctx, 'a.txt'));
    await mkdir(join(ctx, 'a.txt'));
    await writeFile(join(ctx, 'a.txt/inner'), 'inner\n');
    await rebuildMatchesCold();
  });

  it('a .dockerignore change', async () => {
    await writeFile(join(ctx, '.dockerignore'), 'deep\n');
    const after = await rebuildMatchesCold();
    await expect(lstat(join(after.dir, 'deep'))).rejects.toThrow(/ENOENT/);
  });

  it('a --chown change is another step: nothing reused, still the cold layer', async () => {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:local\nCOPY --chown=7:8 . /\n');
    const after = await rebuildMatchesCold();
    expect((await lstat(join(after.dir, 'd1/x'))).uid).toBe(7);
  });

  it('a pruned previous snapshot: the step just copies', async () => {
    const before = await copyLayer();
    await appendFile(join(ctx, 'd2/x'), 'again\n');
    await fx.store.snapshots.remove(before.diffId as Parameters<typeof fx.store.snapshots.remove>[0]);
    await rebuildMatchesCold();
  });
});

describe('shared inodes', () => {
  it('a RUN appending to a reused file copies it up: no snapshot sharing the inode changes', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nCOPY . /s/\nRUN echo more >> /s/keep.txt\n', 'keep.txt': 'keep\n', 'edit.txt': 'v1\n' });
    const copyLayerDir = async (): Promise<string> => {
      const { result } = await runBuild(fx.store, { contextDir: dir });
      const { config } = await imageOf(fx.store, result.manifestDigest);
      return fx.store.snapshots.path(config.rootfs.diff_ids.at(-2) as (typeof config.rootfs.diff_ids)[number]);
    };
    const first = await copyLayerDir();
    await appendFile(join(dir, 'edit.txt'), 'v2\n');
    const second = await copyLayerDir();
    expect(await ino(join(second, 's/keep.txt'))).toBe(await ino(join(first, 's/keep.txt')));
    expect(await readFile(join(first, 's/keep.txt'), 'utf8')).toBe('keep\n');
    expect(await readFile(join(second, 's/keep.txt'), 'utf8')).toBe('keep\n');
  });
});

describe('COPY directory times', () => {
  it('a sub-directory keeps its source mtime although entries were copied into it (fsutil sets it last)', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nCOPY . /t\n', 'sub/deeper/f': 'f\n' });
    const then = new Date('2001-02-03T04:05:06Z');
    await utimes(join(dir, 'sub/deeper'), then, then);
    await utimes(join(dir, 'sub'), then, then);
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const { config } = await imageOf(fx.store, result.manifestDigest);
    const snap = fx.store.snapshots.path(config.rootfs.diff_ids.at(-1) as (typeof config.rootfs.diff_ids)[number]);
    expect((await lstat(join(snap, 't/sub'))).mtime).toEqual(then);
    expect((await lstat(join(snap, 't/sub/deeper'))).mtime).toEqual(then);
  });
});
