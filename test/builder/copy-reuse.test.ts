/**
 * Incremental COPY (src/builder/copy-reuse.ts): after a context change, the rebuilt COPY layer
 * must equal, byte for byte (same diffID), the layer of a genuine rebuild (--no-cache, which
 * reuses nothing), whatever changed; and unchanged files must come from the previous snapshot.
 * The copy goes to `/` so that no dir in the layer is created by the step itself (a created
 * destination gets the build's time, as in BuildKit, and two builds may straddle a second).
 */
import { appendFile, chmod, lstat, mkdir, readdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CopyReuse, StagedFiles } from '../../src/builder/copy-reuse.js';
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

describe('the reuse record', () => {
  const recordFiles = async (): Promise<string[]> => {
    const dir = join(fx.store.root, 'cache', 'copy');
    return (await readdir(dir)).map((name) => join(dir, name));
  };

  it('is a counted line file in staging order; torn it is ignored, the JSON of earlier versions is read', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nCOPY . /r/\n', 'a.txt': 'A\n', 'b/c.txt': 'C\n' });
    const first = await runBuild(fx.store, { contextDir: dir });
    const { config } = await imageOf(fx.store, first.result.manifestDigest);
    const diffId = config.rootfs.diff_ids.at(-1) as string;
    const snap = fx.store.snapshots.path(diffId as (typeof config.rootfs.diff_ids)[number]);
    let record = '';
    let file = '';
    for (const f of await recordFiles()) {
      const text = await readFile(f, 'utf8');
      if (text.startsWith(`tsbuild-copy 1 ${diffId}\n`)) [record, file] = [text, f];
    }
    const lines = record.split('\n');
    expect(lines.slice(1, -2).map((l) => l.split('\t')[0])).toEqual(['/r/Dockerfile', '/r/a.txt', '/r/b/c.txt']);
    expect(lines.at(-2)).toBe('end 3');
    // Torn: nothing is reused, the layer is still the cold one.
    await writeFile(file, record.slice(0, -3));
    await appendFile(join(dir, 'a.txt'), 'more\n');
    const torn = await runBuild(fx.store, { contextDir: dir });
    const tornSnap = fx.store.snapshots.path((await imageOf(fx.store, torn.result.manifestDigest)).config.rootfs.diff_ids.at(-1) as (typeof config.rootfs.diff_ids)[number]);
    expect(await ino(join(tornSnap, 'r/b/c.txt'))).not.toBe(await ino(join(snap, 'r/b/c.txt')));
    // The JSON an earlier version wrote (same lineage, same file) for the torn build's snapshot: its files are reused.
    const tornText = await readFile(file, 'utf8');
    expect([tornText.startsWith('tsbuild-copy 1 sha256:'), tornText === record]).toEqual([true, false]);
    const files = Object.fromEntries(tornText.split('\n').slice(1, -2).map((l) => l.split('\t') as [string, string]));
    await writeFile(file, JSON.stringify({ diffId: tornText.split('\n')[0]?.slice('tsbuild-copy 1 '.length), files }));
    await appendFile(join(dir, 'a.txt'), 'again\n');
    const again = await runBuild(fx.store, { contextDir: dir });
    const againSnap = fx.store.snapshots.path((await imageOf(fx.store, again.result.manifestDigest)).config.rootfs.diff_ids.at(-1) as (typeof config.rootfs.diff_ids)[number]);
    expect(await ino(join(againSnap, 'r/b/c.txt'))).toBe(await ino(join(tornSnap, 'r/b/c.txt')));
  });

  it('CopyReuse.find answers for the exact target and identity, in or out of order', () => {
    const text = ['/a\t1:1', '/b\t2:2', '/c\t3:3', '/d\t4:4'].map((l) => `${l}\n`).join('');
    const reuse = new CopyReuse('/snap', text);
    expect(reuse.find('/a', '1:1')).toBe(0);
    expect(reuse.find('/b', '2:9')).toBeUndefined();
    expect(reuse.find('/c', '3:3')).toBe(text.indexOf('/c'));
    expect(reuse.find('/a', '1:1')).toBe(0);
    expect(reuse.find('/d', '4:4')).toBe(text.indexOf('/d'));
    expect(reuse.find('/d', '4:')).toBeUndefined();
    expect(reuse.find('/', '1:1')).toBeUndefined();
    expect(reuse.find('/a\t1:1\n/b', '2:2')).toBeUndefined();
    for (let i = 0; i < 12; i++) expect(reuse.find(`/x${i}`, '1:1')).toBeUndefined();
    expect([reuse.find('/b', '2:2'), reuse.find('/a', '1:2')]).toEqual([text.indexOf('/b'), undefined]);
  });

  it('StagedFiles writes linked lines as runs of the old record, and a replaced target once', () => {
    const text = '/a\t1\n/b\t2\n/c\t3\n';
    const reuse = new CopyReuse('/snap', text);
    const staged = new StagedFiles(reuse);
    staged.add('/a', '1', reuse.find('/a', '1'));
    staged.add('/b', '2', reuse.find('/b', '2'));
    staged.add('/n', '9');
    staged.add('/c', '3', reuse.find('/c', '3'));
    staged.add('/bad\tname', '5');
    expect(staged.lines()).toEqual({ body: '/a\t1\n/b\t2\n/n\t9\n/c\t3\n', count: 4 });
    staged.forget('/b');
    staged.forget('/n');
    staged.add('/n', '10');
    expect(staged.lines()).toEqual({ body: '/a\t1\n/c\t3\n/n\t10\n', count: 3 });
  });
});
