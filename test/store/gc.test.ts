import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/mediatypes.js';
import { compressLayer } from '../../src/layers/compress.js';
import { prune, verifyStore } from '../../src/store/gc.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, tempDir } from '../layers/fixtures.js';
import { buildImage, type TestImage } from '../layers/image-fixture.js';

let dir: string;
let store: Store;
let image: TestImage;

beforeEach(async () => {
  dir = tempDir();
  store = await openStore(join(dir, 'store'));
  image = await buildImage(store, dir, [{ a: 'a' }, { b: 'b' }]);
  await store.tags.set('localhost/app:v1', { mediaType: MediaType.OciManifest, digest: image.manifest, size: (await store.blobs.size(image.manifest)) ?? 0 });
  for (const l of image.layers) await store.snapshots.ensure(l.digest, () => Promise.resolve());
});
afterEach(() => cleanup(dir));

describe('prune', () => {
  it('frees unreferenced blobs and snapshots, keeps tagged images and their compressed variants', async () => {
    const junk = await store.blobs.putBytes('x'.repeat(5000));
    const deadSnap = (`sha256:${'e'.repeat(64)}`) as typeof junk.digest;
    await store.snapshots.ensure(deadSnap, () => Promise.resolve());
    const gz = await compressLayer(store, image.layers[0]!.digest, { format: 'gzip' });
    const dry = await prune(store, { gracePeriodMs: 0, dryRun: true });
    expect(dry).toEqual({ removedBlobs: 1, removedSnapshots: 1, bytesFreed: 5000 });
    expect(await store.blobs.has(junk.digest)).toBe(true);
    const r = await prune(store, { gracePeriodMs: 0 });
    expect(r).toEqual({ removedBlobs: 1, removedSnapshots: 1, bytesFreed: 5000 });
    expect(await store.blobs.has(junk.digest)).toBe(false);
    expect(await store.blobs.has(gz.digest)).toBe(true);
    expect((await store.snapshots.list()).sort()).toEqual(image.layers.map((l) => l.digest).sort());
    expect(await verifyStore(store)).toEqual({ ok: true, problems: [] });
  });

  it('keeps build-cache refs with keepCache, drops them otherwise; spares blobs inside the grace period', async () => {
    await store.tags.remove('localhost/app:v1');
    await store.cache.put('ab'.repeat(32), { refs: [image.layers[0]!.digest], data: {}, created: new Date().toISOString() });
    expect((await prune(store, { keepCache: true })).removedBlobs).toBe(0); // all fresh: default grace period
    const kept = await prune(store, { gracePeriodMs: 0, keepCache: true });
    expect(await store.blobs.has(image.layers[0]!.digest)).toBe(true);
    expect(kept.removedSnapshots).toBe(1);
    const all = await prune(store, { gracePeriodMs: 0 });
    expect(await store.blobs.has(image.layers[0]!.digest)).toBe(false);
    expect(all.removedBlobs).toBe(1);
    expect(await store.cache.list()).toEqual([]);
  });
});

describe('verifyStore', () => {
  it('reports corrupt blobs and dangling index entries', async () => {
    writeFileSync(store.blobs.path(image.layers[1]!.digest), 'garbage');
    await store.blobs.delete(image.manifest);
    const r = await verifyStore(store);
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/is corrupt/);
    expect(r.problems.join('\n')).toMatch(/missing blob/);
  });
});
