/** libdeflate gzip: one member per block with the 'TB' size subfield, read back by zlib, gzip(1) and our own decompress. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip, gunzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import { compressStream, decompress } from '../../src/layers/codec.js';
import { compressLayer } from '../../src/layers/compress.js';
import { loadLibdeflate } from '../../src/layers/libdeflate.js';
import { memberGzip, type ParallelGzipOptions } from '../../src/layers/pgzip.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, collect, tempDir } from './fixtures.js';
import { buildImage, type TestImage } from './image-fixture.js';
import { chunked, ld, members, MiB, sample } from './members-fixture.js';

async function mgz(data: Buffer, options: ParallelGzipOptions = {}, chunk = 64 * 1024): Promise<Buffer> {
  return collect(memberGzip(chunked(data, chunk), ld(), options));
}

describe('memberGzip (libdeflate)', () => {
  const dir = tempDir();
  afterAll(() => cleanup(dir));
  afterEach(() => {
    delete process.env['TSBUILD_NO_LIBDEFLATE'];
  });

  it.each([0, 1, 1000, MiB, MiB + 1, 2 * MiB, 3 * MiB - 7])('round-trips %i bytes through zlib, gzip(1) and decompress', async (size) => {
    const data = sample(size);
    const gz = await mgz(data);
    expect(gunzipSync(gz).equals(data)).toBe(true);
    expect((await collect(Readable.from([gz]).pipe(createGunzip()))).equals(data)).toBe(true);
    const file = join(dir, `t-${size}.gz`);
    writeFileSync(file, gz);
    execFileSync('gzip', ['-t', file]);
    expect(execFileSync('gzip', ['-dc', file], { maxBuffer: 64 << 20 }).equals(data)).toBe(true);
    expect((await collect(decompress('gzip', chunked(gz, 10_000)))).equals(data)).toBe(true);
    // One member per 1 MiB block (one, empty, for empty input), each ISIZE its block's size.
    const sizes = members(gz).map(([, , isize]) => isize);
    expect(sizes).toEqual(size === 0 ? [0] : Array.from({ length: Math.ceil(size / MiB) }, (_, i) => Math.min(MiB, size - i * MiB)));
  });

  it('honours levels 0, 1, 6 and 9 on random and text mixes (0 = stored)', async () => {
    const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `row ${i % 977} value ${(i * 7919) % 10007}\n`).join(''));
    const data = Buffer.concat([text, randomBytes(300_000), text.subarray(0, 250_000)]);
    const sizes: number[] = [];
    for (const level of [0, 1, 6, 9]) {
      const gz = await mgz(data, { level, blockSize: 64 * 1024, inFlight: 3 }, data.length);
      expect(gunzipSync(gz).equals(data)).toBe(true);
      expect((await collect(decompress('gzip', Readable.from([gz])))).equals(data)).toBe(true);
      sizes.push(gz.length);
    }
    const [stored, ...deflated] = sizes as [number, number, number, number];
    expect(stored).toBeGreaterThan(data.length); // stored blocks: input plus framing
    // The random 300 KB stay stored at every level; the text shrinks.
    for (const size of deflated) expect(size).toBeLessThan(stored / 2);
  });

  it('stores incompressible blocks (random bytes cost their size plus framing) and still shrinks repeats', async () => {
    const random = randomBytes(MiB);
    const gz = await mgz(random);
    expect(gz.length).toBeLessThan(MiB + 200);
    expect(gunzipSync(gz).equals(random)).toBe(true);
    // A random 10 KiB unit repeated: high byte entropy, but deflate finds the repeats.
    const unit = randomBytes(10_000);
    const repeated = Buffer.concat(Array.from({ length: 100 }, () => unit));
    const small = await mgz(repeated);
    expect(small.length).toBeLessThan(repeated.length / 10);
    expect(gunzipSync(small).equals(repeated)).toBe(true);
  });

  it('is deterministic whatever the chunking, with an exact header (mtime 0, OS 3, one TB subfield)', async () => {
    const data = sample(2_500_000, 3);
    const a = await mgz(data);
    const b = await mgz(data, {}, 4096);
    const c = await mgz(data, {}, data.length);
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(true);
    expect(a.subarray(0, 16)).toEqual(Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 8, 0, 0x54, 0x42, 4, 0]));
    const walked = members(a);
    expect(walked.at(-1)![0] + walked.at(-1)![1]).toBe(a.length);
  });

  it('rejects a bad level as a TsbuildError', async () => {
    await expect(mgz(Buffer.from('x'), { level: 10 })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('compressStream(gzip) writes members; TSBUILD_NO_LIBDEFLATE=1 writes one zlib member, and each path reads the other', async () => {
    const data = sample(2 * MiB + 5, 4);
    const viaStream = async (): Promise<Buffer> => {
      const s = compressStream('gzip', 6);
      const out = collect(s);
      s.end(data);
      return out;
    };
    const withLib = await viaStream();
    expect(members(withLib)).toHaveLength(3);
    process.env['TSBUILD_NO_LIBDEFLATE'] = '1';
    expect(loadLibdeflate()).toBeUndefined();
    const withZlib = await viaStream();
    expect(withZlib.subarray(0, 4)).toEqual(Buffer.from([0x1f, 0x8b, 8, 0])); // no FEXTRA: today's single member
    expect(gunzipSync(withZlib).equals(data)).toBe(true);
    expect((await collect(decompress('gzip', Readable.from([withLib])))).equals(data)).toBe(true);
    delete process.env['TSBUILD_NO_LIBDEFLATE'];
    expect((await collect(decompress('gzip', Readable.from([withZlib])))).equals(data)).toBe(true);
  });

  describe('compressed-layer cache', () => {
    let store: Store;
    let image: TestImage;
    beforeAll(async () => {
      store = await openStore(join(dir, 'store'));
      image = await buildImage(store, dir, [{ 'big/a': sample(3 * MiB, 5).toString('latin1'), small: 'x' }, { other: 'y'.repeat(50_000) }]);
    });

    it('compresses once, reuses the cached blob from either path, and reads it back to the diffID', async () => {
      const first = image.layers[0]!.digest;
      const second = image.layers[1]!.digest;
      const desc = await compressLayer(store, first, { format: 'gzip', level: 6 });
      const gz = readFileSync(store.blobs.path(desc.digest));
      expect(members(gz).length).toBeGreaterThan(1);
      expect(sha256Digest(gunzipSync(gz))).toBe(first);
      // A later call (any level, either path) gets the cached descriptor: no second compression.
      process.env['TSBUILD_NO_LIBDEFLATE'] = '1';
      expect(await compressLayer(store, first, { format: 'gzip', level: 1 })).toEqual(desc);
      // A layer first compressed by zlib stays zlib's blob once libdeflate is back.
      const zdesc = await compressLayer(store, second, { format: 'gzip' });
      delete process.env['TSBUILD_NO_LIBDEFLATE'];
      expect(await compressLayer(store, second, { format: 'gzip' })).toEqual(zdesc);
      // 'none' recreates the plain blob from the cached compressed one (our decompress, members path).
      const plain = readFileSync(store.blobs.path(first));
      await store.blobs.delete(first);
      expect(await compressLayer(store, first, { format: 'none' })).toMatchObject({ digest: first, size: plain.length });
      expect(readFileSync(store.blobs.path(first)).equals(plain)).toBe(true);
    });
  });
});
