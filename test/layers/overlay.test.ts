import { execFileSync } from 'node:child_process';
import { chmodSync, createReadStream, linkSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitLayer } from '../../src/layers/commit.js';
import { extractLayer } from '../../src/layers/extract.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import type { Digest } from '../../src/image/digest.js';
import { cleanup, collect, describeTree, listTar, makeTree, mountOverlay, tempDir, umount } from './fixtures.js';

describe('overlay upper dir → layer → snapshots → overlay view', () => {
  const dir = tempDir();
  const base = join(dir, 'base');
  const upper = join(dir, 'upper');
  const merged = join(dir, 'merged');
  let store: Store;
  let expectedView: string[];
  let baseLayer: Digest;
  let topLayer: Digest;

  beforeAll(async () => {
    store = await openStore(join(dir, 'store'));
    makeTree(base, {
      'etc/passwd': 'root:x:0:0',
      'etc/hosts': 'localhost',
      'var/cache/a': 'a',
      'var/cache/sub/b': 'b',
      'usr/bin/tool': { file: 'tool', mode: 0o755 },
      'link': { symlink: 'etc/hosts' },
    });
    mkdirSync(upper);
    mountOverlay([base], upper, join(dir, 'work'), merged);
    try {
      unlinkSync(join(merged, 'etc/passwd'));
      rmSync(join(merged, 'var/cache'), { recursive: true });
      mkdirSync(join(merged, 'var/cache'));
      writeFileSync(join(merged, 'var/cache/new'), 'new');
      chmodSync(join(merged, 'usr/bin/tool'), 0o700);
      writeFileSync(join(merged, 'new-a'), 'shared');
      linkSync(join(merged, 'new-a'), join(merged, 'new-b'));
      writeFileSync(join(merged, 'ephemeral'), 'x');
      unlinkSync(join(merged, 'ephemeral'));
      unlinkSync(join(merged, 'link'));
      execFileSync('ln', ['-s', 'usr/bin/tool', join(merged, 'link')]);
      expectedView = describeTree(merged);
    } finally {
      umount(merged);
    }
    // A whiteout for a path that never existed below must be dropped from the layer.
    execFileSync('mknod', [join(upper, 'ghost'), 'c', '0', '0']);
    baseLayer = (await commitLayer(store, base, [], { sourceDateEpoch: 0 })).diffId;
    topLayer = (await commitLayer(store, upper, [base], { sourceDateEpoch: 0 })).diffId;
  });
  afterAll(() => cleanup(merged, dir));

  it('turns the upper dir into OCI whiteouts, an opaque marker after its dir, and hard links', async () => {
    const listing = await listTar(await collect(createReadStream(store.blobs.path(topLayer))));
    expect(listing).toEqual([
      'dir etc/ 755 0:0',
      'file etc/.wh.passwd 0 0:0 ',
      'symlink link 777 0:0 -> usr/bin/tool',
      'file new-a 644 0:0 shared',
      'link new-b 644 0:0 -> new-a',
      'dir usr/ 755 0:0',
      'dir usr/bin/ 755 0:0',
      'file usr/bin/tool 700 0:0 tool',
      'dir var/ 755 0:0',
      'dir var/cache/ 755 0:0',
      'file var/cache/.wh..wh..opq 0 0:0 ',
      'file var/cache/new 644 0:0 new',
    ]);
  });

  it('extracts snapshots that stack as overlay lowerdirs into the same view', async () => {
    const snaps: string[] = [];
    for (const diffId of [baseLayer, topLayer]) {
      snaps.unshift(
        await store.snapshots.ensure(diffId, async (target) => {
          const r = await extractLayer(createReadStream(store.blobs.path(diffId)), target, { mode: 'snapshot' });
          expect(r.diffId).toBe(diffId);
        }),
      );
    }
    const view = join(dir, 'view');
    mountOverlay(snaps, join(dir, 'u2'), join(dir, 'w2'), view);
    try {
      expect(describeTree(view)).toEqual(expectedView);
    } finally {
      umount(view);
    }
  });

  it('applies both layers onto a plain dir with the same result (whiteouts applied)', async () => {
    const target = join(dir, 'applied');
    for (const diffId of [baseLayer, topLayer]) {
      await extractLayer(createReadStream(store.blobs.path(diffId)), target, { mode: 'apply' });
    }
    expect(describeTree(target)).toEqual(expectedView);
  });

  it('reports an unchanged upper dir as empty', async () => {
    const emptyUpper = join(dir, 'empty-upper');
    mkdirSync(emptyUpper);
    const r = await commitLayer(store, emptyUpper, [base]);
    expect(r.empty).toBe(true);
    expect(r.size).toBe(1024);
  });
});
