/**
 * Large COPYs hand their regular files to the I/O worker thread (src/builder/copy-pool.ts) after
 * the first few hundred. The staged result must be what the inline copy gives: every file's
 * content, mode, owner and mtime, directory mtimes set after their contents, hard links kept,
 * a later source replacing an earlier one at the same path, and the same layer on every build.
 * The copy goes to `/` so that no dir in the layer is created by the step itself (a created
 * destination gets the build's time, as in BuildKit, and two builds may straddle a second).
 */
import { chmod, chown, link, lstat, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { imageOf, runBuild, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();
const DIRS = 12;
const PER_DIR = 60; // 720 files: well past the inline share
let ctx = '';

function fileName(d: number, f: number): string {
  return `many/d${d}/f${f}.txt`;
}

beforeAll(async () => {
  ctx = await fx.ctx({ Dockerfile: 'FROM busybox:local\nCOPY many/ a/ b/ /\n', 'a/same.txt': 'from a\n', 'b/same.txt': 'from b\n' });
  const modes = [0o644, 0o755, 0o600, 0o4755, 0o640];
  for (let d = 0; d < DIRS; d++) {
    await mkdir(join(ctx, `many/d${d}`), { recursive: true });
    for (let f = 0; f < PER_DIR; f++) {
      const path = join(ctx, fileName(d, f));
      await writeFile(path, `dir ${d} file ${f}\n`.repeat(1 + (f % 7)));
      await chown(path, 1000 + (f % 3), 2000 + (d % 4));
      await chmod(path, modes[f % modes.length] as number);
      await utimes(path, 1_600_000_000 + d * 1000 + f, 1_600_000_000 + d * 1000 + f);
    }
    await utimes(join(ctx, `many/d${d}`), 1_500_000_000 + d, 1_500_000_000 + d);
  }
  await link(join(ctx, fileName(DIRS - 1, 0)), join(ctx, `many/d${DIRS - 1}/hardlink.txt`));
  await utimes(join(ctx, `many/d${DIRS - 1}`), 1_500_000_000 + DIRS - 1, 1_500_000_000 + DIRS - 1);
});

async function copyLayerDir(noCache: boolean): Promise<{ diffId: string; dir: string }> {
  const { result } = await runBuild(fx.store, { contextDir: ctx, noCache });
  const { config } = await imageOf(fx.store, result.manifestDigest);
  const diffId = config.rootfs.diff_ids.at(-1) as string;
  return { diffId, dir: fx.store.snapshots.path(diffId as Parameters<typeof fx.store.snapshots.path>[0]) };
}

describe('COPY through the worker thread', () => {
  it('stages every file with its content, mode, owner and mtime, and directories with theirs', async () => {
    const { dir } = await copyLayerDir(true);
    for (let d = 0; d < DIRS; d++) {
      for (let f = 0; f < PER_DIR; f++) {
        const src = join(ctx, fileName(d, f));
        const dst = join(dir, `d${d}`, `f${f}.txt`);
        const [s, t] = [await lstat(src), await lstat(dst)];
        // Context files are root's in the image, as BuildKit's context transfer makes them.
        expect({ mode: t.mode, uid: t.uid, gid: t.gid, mtime: t.mtimeMs }, dst).toEqual({ mode: s.mode, uid: 0, gid: 0, mtime: s.mtimeMs });
        expect(await readFile(dst, 'utf8')).toBe(await readFile(src, 'utf8'));
      }
      expect((await lstat(join(dir, `d${d}`))).mtimeMs).toBe((await lstat(join(ctx, `many/d${d}`))).mtimeMs);
    }
    const last = join(dir, `d${DIRS - 1}`);
    expect((await lstat(join(last, 'hardlink.txt'))).ino).toBe((await lstat(join(last, 'f0.txt'))).ino);
    expect(await readFile(join(dir, 'same.txt'), 'utf8')).toBe('from b\n');
  });

  it('gives the same layer on every build, cold or incremental after an edit', async () => {
    const first = await copyLayerDir(true);
    expect((await copyLayerDir(true)).diffId).toBe(first.diffId);
    await writeFile(join(ctx, fileName(3, 5)), 'edited\n');
    await utimes(join(ctx, fileName(3, 5)), 1_700_000_000, 1_700_000_000);
    const incremental = await copyLayerDir(false);
    expect(incremental.diffId).not.toBe(first.diffId);
    expect((await copyLayerDir(true)).diffId).toBe(incremental.diffId);
    // The incremental build hard-linked unchanged files from the previous snapshot: that one is intact.
    expect(await readFile(join(first.dir, 'd3', 'f5.txt'), 'utf8')).toBe('dir 3 file 5\n'.repeat(6));
  });

  it('--chown and --chmod apply to every file the worker copies', async () => {
    await writeFile(join(ctx, 'Dockerfile.chown'), 'FROM busybox:local\nCOPY --chown=1234:5678 --chmod=0640 many/ /c/\n');
    const { result } = await runBuild(fx.store, { contextDir: ctx, dockerfile: join(ctx, 'Dockerfile.chown') });
    const { config } = await imageOf(fx.store, result.manifestDigest);
    const dir = fx.store.snapshots.path(config.rootfs.diff_ids.at(-1) as Parameters<typeof fx.store.snapshots.path>[0]);
    for (let d = 0; d < DIRS; d++) {
      for (let f = 0; f < PER_DIR; f += 7) {
        const t = await lstat(join(dir, 'c', `d${d}`, `f${f}.txt`));
        expect({ mode: t.mode & 0o7777, uid: t.uid, gid: t.gid }).toEqual({ mode: 0o640, uid: 1234, gid: 5678 });
      }
    }
  });
});
