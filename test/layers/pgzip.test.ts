/** Parallel gzip: one standard gzip member, byte-exact round trips, gzip(1) and skopeo accept it. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOciArchive } from '../../src/layers/archive.js';
import { compressStream } from '../../src/layers/codec.js';
import { compressLayer } from '../../src/layers/compress.js';
import { parallelGzip, type ParallelGzipOptions } from '../../src/layers/pgzip.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, collect, tempDir } from './fixtures.js';
import { buildImage, type TestImage } from './image-fixture.js';

/** Half random, half repetitive text: exercises both stored-ish and well-compressing blocks. */
function sample(size: number, seed = 1): Buffer {
  const text = Buffer.from(`line ${seed} the quick brown fox jumps over the lazy dog 0123456789\n`.repeat(Math.ceil(size / 128) + 1));
  return Buffer.concat([randomBytes(Math.floor(size / 2)), text]).subarray(0, size);
}

async function pgz(data: Buffer, options: ParallelGzipOptions = {}, chunk = 64 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk));
  return collect(parallelGzip(Readable.from(chunks), options));
}

describe('parallelGzip', () => {
  const dir = tempDir();
  afterAll(() => cleanup(dir));

  it.each([0, 1, 1000, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) - 7])('round-trips %i bytes through zlib and gzip -t', async (size) => {
    const data = sample(size);
    const gz = await pgz(data);
    expect(gz.subarray(0, 3)).toEqual(Buffer.from([0x1f, 0x8b, 8]));
    expect(gunzipSync(gz).equals(data)).toBe(true);
    const file = join(dir, `t-${size}.gz`);
    writeFileSync(file, gz);
    execFileSync('gzip', ['-t', file]);
    expect(execFileSync('gzip', ['-dc', file], { maxBuffer: 64 << 20 }).equals(data)).toBe(true);
  });

  it('handles one huge input chunk, small blocks and every level', async () => {
    const data = sample(600_000, 2);
    for (const level of [0, 1, 6, 9]) {
      const gz = await pgz(data, { level, blockSize: 64 * 1024, inFlight: 3 }, data.length);
      expect(gunzipSync(gz).equals(data)).toBe(true);
    }
  });

  it('frames incompressible blocks as stored deflate blocks between deflated ones (also a stored last block, and empty input at level 0)', async () => {
    const text = Buffer.from('some text that compresses well\n'.repeat(10_000));
    // text, random (stored), text, random last (stored with BFINAL): each 200 KiB+, blocks of 64 KiB.
    const data = Buffer.concat([text.subarray(0, 200_000), randomBytes(300_000), text.subarray(0, 250_000), randomBytes(333_333)]);
    const gz = await pgz(data, { blockSize: 64 * 1024 });
    expect(gunzipSync(gz).equals(data)).toBe(true);
    // Stored random parts cost their size plus 5 bytes per 64 KiB; the text still shrinks.
    expect(gz.length).toBeLessThan(300_000 + 333_333 + 20_000);
    const file = join(dir, 'mixed.gz');
    writeFileSync(file, gz);
    execFileSync('gzip', ['-t', file]);
    for (const level of [0, 6]) expect(gunzipSync(await pgz(Buffer.alloc(0), { level })).length).toBe(0);
    const all = randomBytes(200_000);
    expect(gunzipSync(await pgz(all, { level: 0, blockSize: 64 * 1024 })).equals(all)).toBe(true);
  });

  it('primes each block with the previous 32 KiB, staying close to serial gzip in size', async () => {
    // Repetitive data whose repeats straddle block boundaries: without a dictionary each block
    // would restart from scratch.
    const unit = randomBytes(20_000);
    const data = Buffer.concat(Array.from({ length: 200 }, () => unit));
    const ours = await pgz(data, { blockSize: 64 * 1024 });
    const serial = gzipSync(data);
    expect(gunzipSync(ours).equals(data)).toBe(true);
    expect(ours.length).toBeLessThan(serial.length * 1.5);
    expect(ours.length).toBeLessThan(data.length / 20);
  });

  it('is one gzip member (no concatenated members) and deterministic', async () => {
    const data = sample(2_500_000, 3);
    const a = await pgz(data);
    const b = await pgz(data, {}, 4096);
    expect(a.equals(b)).toBe(true);
    // The member's trailer is the last 8 bytes: CRC32 and ISIZE of the whole input.
    expect(a.readUInt32LE(a.length - 4)).toBe(data.length);
    expect(a.subarray(3).indexOf(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]))).toBe(-1);
  });

  it('rejects a bad level as a TsbuildError', async () => {
    await expect(pgz(Buffer.from('x'), { level: 12 })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('compressStream(gzip) pipes through it', async () => {
    const data = sample(1_500_000, 4);
    const s = compressStream('gzip', 1);
    const out = collect(s);
    s.end(data);
    expect(gunzipSync(await out).equals(data)).toBe(true);
  });

  describe('in exports', () => {
    let store: Store;
    let image: TestImage;
    beforeAll(async () => {
      store = await openStore(join(dir, 'store'));
      image = await buildImage(store, dir, [{ 'big/a': sample(3_000_000, 5).toString('latin1'), 'small': 'x' }]);
    });

    it('skopeo copies an oci-archive whose layers it compressed, and they gunzip to the diffID', async () => {
      const desc = await compressLayer(store, image.layers[0]!.digest, { format: 'gzip', level: 6 });
      const gz = readFileSync(store.blobs.path(desc.digest));
      const plain = readFileSync(store.blobs.path(image.layers[0]!.digest));
      expect(gunzipSync(gz).equals(plain)).toBe(true);
      const archive = join(dir, 'img.oci.tar');
      const out = (await import('node:fs')).createWriteStream(archive);
      await exportOciArchive(store, [{ name: 'v1', manifest: image.manifest }], out, { compression: 'gzip' });
      await new Promise<void>((resolve, reject) => out.close((err) => (err ? reject(err) : resolve())));
      const copied = join(dir, 'copied');
      mkdirSync(copied);
      execFileSync('skopeo', ['copy', '--quiet', `oci-archive:${archive}:v1`, `dir:${copied}`]);
      const layer = readdirSync(copied).find((f) => f === desc.digest.slice(7));
      expect(layer).toBeDefined();
      execFileSync('gzip', ['-t'], { input: readFileSync(join(copied, layer!)) });
    });
  });
});
