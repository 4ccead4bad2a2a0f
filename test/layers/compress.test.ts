import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { compressStream, detectCompression } from '../../src/layers/codec.js';
import { compressLayer } from '../../src/layers/compress.js';
import { extractLayer } from '../../src/layers/extract.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, collect, describeTree, tempDir } from './fixtures.js';
import { buildImage, type TestImage } from './image-fixture.js';

describe('compression', () => {
  const dir = tempDir();
  let store: Store;
  let image: TestImage;

  beforeAll(async () => {
    store = await openStore(join(dir, 'store'));
    image = await buildImage(store, dir, [{ 'a/b': 'x'.repeat(100_000), 'c': { file: 'c', mode: 0o755 } }]);
  });
  afterAll(() => cleanup(dir));

  it('compresses a layer to gzip once and reuses the cached mapping', async () => {
    const diffId = image.layers[0]!.digest;
    const first = await compressLayer(store, diffId, { format: 'gzip' });
    expect(first.mediaType).toBe(MediaType.OciLayerGzip);
    const gz = readFileSync(store.blobs.path(first.digest));
    expect(sha256Digest(gunzipSync(gz))).toBe(diffId);
    const mtime = statSync(store.blobs.path(first.digest)).mtimeMs;
    const again = await compressLayer(store, diffId, { format: 'gzip' });
    expect(again).toEqual(first);
    expect(statSync(store.blobs.path(first.digest)).mtimeMs).toBe(mtime);
    expect(await store.compressed.get(diffId, 'gzip')).toEqual(first);
  });

  it('compresses to zstd (via zstd(1)) readable by the zstd CLI', async () => {
    const diffId = image.layers[0]!.digest;
    const desc = await compressLayer(store, diffId, { format: 'zstd', level: 5 });
    expect(desc.mediaType).toBe(MediaType.OciLayerZstd);
    const plain = execFileSync('zstd', ['-d', '-c', store.blobs.path(desc.digest)]);
    expect(sha256Digest(plain)).toBe(diffId);
  });

  it('extracts gzip, zstd and plain layers to the same tree with the same diffID', async () => {
    const diffId = image.layers[0]!.digest;
    const trees: string[][] = [];
    for (const format of ['none', 'gzip', 'zstd'] as const) {
      const desc = await compressLayer(store, diffId, { format });
      expect(detectCompression(readFileSync(store.blobs.path(desc.digest)).subarray(0, 4))).toBe(format);
      const target = join(dir, `x-${format}`);
      const r = await extractLayer(await store.blobs.open(desc.digest), target, { mode: 'apply' });
      expect(r.diffId).toBe(diffId);
      trees.push(describeTree(target));
    }
    expect(trees[1]).toEqual(trees[0]);
    expect(trees[2]).toEqual(trees[0]);
  });

  it('recovers the uncompressed blob from a cached compressed one', async () => {
    const diffId = image.layers[0]!.digest;
    await store.blobs.delete(diffId);
    const plain = await compressLayer(store, diffId, { format: 'none' });
    expect(plain).toMatchObject({ mediaType: MediaType.OciLayer, digest: diffId });
    expect(await store.blobs.has(diffId)).toBe(true);
  });

  it('compressStream round-trips both formats', async () => {
    for (const format of ['gzip', 'zstd'] as const) {
      const out = await collect(Readable.from([Buffer.from('hello '.repeat(1000))]).pipe(compressStream(format)));
      expect(detectCompression(out)).toBe(format);
    }
  });
});
