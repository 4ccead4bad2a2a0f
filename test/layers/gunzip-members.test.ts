/**
 * Reading our gzip members in parallel, and falling back to zlib on anything else: every input
 * decodes to exactly what today's zlib path gives, or is refused as it refuses it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import { autoDecompress, decompress } from '../../src/layers/codec.js';
import { extractLayer } from '../../src/layers/extract.js';
import { gunzipMembers } from '../../src/layers/gunzip.js';
import type { Libdeflate } from '../../src/layers/libdeflate.js';
import { memberGzip } from '../../src/layers/pgzip.js';
import { cleanup, collect, makeTar, tempDir } from './fixtures.js';
import { chunked, ld, members, sample } from './members-fixture.js';

/** The output's length and digest (a failing comparison then prints two short strings), or the error code. */
type Outcome = { ok: string } | { error: string };

const summary = (b: Buffer): string => `${b.length} bytes ${sha256Digest(b)}`;

async function outcome(run: () => AsyncIterable<Buffer>): Promise<Outcome> {
  try {
    return { ok: summary(await collect(run())) };
  } catch (err) {
    return { error: (err as { code?: string }).code ?? String(err) };
  }
}

/** Today's path: node:zlib's streaming gunzip (what decompress does without libdeflate). */
async function zlibOutcome(gz: Buffer, chunk = 8192): Promise<Outcome> {
  process.env['TSBUILD_NO_LIBDEFLATE'] = '1';
  try {
    return await outcome(() => decompress('gzip', chunked(gz, chunk)));
  } finally {
    delete process.env['TSBUILD_NO_LIBDEFLATE'];
  }
}

/** gunzipMembers with the real zlib fallback, recording what was handed to zlib and what libdeflate was asked to inflate. */
async function ours(gz: Buffer, chunk = 8192): Promise<{ result: Outcome; zlibGot: Buffer | undefined; inflated: number[] }> {
  let zlibGot: Buffer | undefined;
  const inflated: number[] = [];
  const lib = ld();
  const recording: Libdeflate = {
    gzipMember: (input, level) => lib.gzipMember(input, level),
    inflateRaw: (input, size, crc) => (inflated.push(size), lib.inflateRaw(input, size, crc)),
  };
  const zlib = (input: AsyncIterable<Uint8Array>): AsyncIterable<Buffer> =>
    (async function* () {
      const all = await collect(input);
      zlibGot = all;
      process.env['TSBUILD_NO_LIBDEFLATE'] = '1';
      try {
        yield* decompress('gzip', chunked(all, chunk));
      } finally {
        delete process.env['TSBUILD_NO_LIBDEFLATE'];
      }
    })();
  const result = await outcome(() => gunzipMembers(chunked(gz, chunk), recording, zlib));
  return { result, zlibGot, inflated };
}

const EMPTY_MEMBER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('gunzip of gzip members', () => {
  afterEach(() => {
    delete process.env['TSBUILD_NO_LIBDEFLATE'];
  });

  const data = sample(300_000, 7);
  let gz: Buffer;
  const stream = async (): Promise<Buffer> => (gz ??= await collect(memberGzip(chunked(data, 65_536), ld(), { blockSize: 64 * 1024 })));
  /** A copy of the stream with `edit` applied, knowing each member's [offset, size, isize]. */
  const edited = async (edit: (b: Buffer, m: [number, number, number][]) => Buffer | void): Promise<Buffer> => {
    const copy = Buffer.from(await stream());
    return edit(copy, members(copy)) ?? copy;
  };
  const same = async (input: Buffer, expected: 'ok' | 'error'): Promise<Awaited<ReturnType<typeof ours>>> => {
    const reference = await zlibOutcome(input);
    const got = await ours(input);
    expect(got.result).toEqual(reference);
    expect('ok' in reference ? 'ok' : 'error').toBe(expected);
    // Through the public decompress too, with other chunk sizes.
    for (const chunk of [1, 65_536, input.length + 1]) {
      if (chunk === 1 && input.length > 50_000) continue;
      expect(await outcome(() => decompress('gzip', chunked(input, chunk)))).toEqual(reference);
    }
    return got;
  };

  it('inflates intact members with libdeflate only, never zlib', async () => {
    const got = await same(await stream(), 'ok');
    expect(got.zlibGot).toBeUndefined();
    expect(got.inflated).toEqual(members(await stream()).map(([, , isize]) => isize));
    expect(got.result).toEqual({ ok: summary(data) });
  });

  it('hands foreign gzip (no subfield) to zlib from byte 0', async () => {
    const foreign = Buffer.concat([gzipSync(data.subarray(0, 1000)), gzipSync(data.subarray(1000))]);
    const got = await same(foreign, 'ok');
    expect(got.zlibGot?.equals(foreign)).toBe(true);
    expect(got.inflated).toEqual([]);
  });

  it('falls back at a member with a bad CRC, from its first byte (after an empty member), and is refused like zlib', async () => {
    const input = await edited((b, m) => void (b[m[2]![0] + m[2]![1] - 8]! ^= 1));
    const got = await same(input, 'error');
    const from = members(await stream())[2]![0];
    expect(got.zlibGot?.equals(Buffer.concat([EMPTY_MEMBER, input.subarray(from)]))).toBe(true);
  });

  it('refuses a lying ISIZE like zlib', async () => {
    await same(await edited((b, m) => void b.writeUInt32LE(m[1]![2] + 1, m[1]![0] + m[1]![1] - 4)), 'error');
  });

  it('decodes through zlib when the size subfield lies (inside the member, beyond the data, absurd)', async () => {
    for (const lie of [(size: number) => size - 1, (size: number) => size + 3, () => 0xfffffff0, () => 25]) {
      await same(await edited((b, m) => void b.writeUInt32LE(lie(m[3]![1]), m[3]![0] + 16)), 'ok');
    }
    const last = await edited((b, m) => void b.writeUInt32LE(m.at(-1)![1] + 100, m.at(-1)![0] + 16));
    expect((await same(last, 'ok')).zlibGot).toBeDefined();
  });

  it('decodes a stream with a foreign member in the middle (zlib from there on)', async () => {
    const input = await edited((b, m) => {
      const [at, size] = m[2]!;
      const plain = data.subarray(2 * 65_536, 3 * 65_536);
      return Buffer.concat([b.subarray(0, at), gzipSync(plain), b.subarray(at + size)]);
    });
    const got = await same(input, 'ok');
    expect(got.result).toEqual({ ok: summary(data) });
    expect(got.inflated).toHaveLength(2);
  });

  it('refuses truncated streams like zlib, wherever the cut falls', async () => {
    const full = await stream();
    const m = members(full);
    for (const cut of [1, 10, m[1]![0] + 5, m[1]![0] + 19, m[2]![0] + 100, m[2]![0] + m[2]![1] - 3, full.length - 1]) {
      await same(full.subarray(0, cut), 'error');
    }
  });

  it('treats what follows the last member as zlib does: zero padding ignored, garbage refused, an empty stream refused', async () => {
    const full = await stream();
    await same(Buffer.concat([full, Buffer.alloc(100)]), 'ok');
    await same(Buffer.concat([full, Buffer.from('garbage')]), 'error');
    await same(Buffer.alloc(0), 'error');
  });

  it('refuses a corrupted deflate payload like zlib', async () => {
    await same(await edited((b, m) => void (b[m[3]![0] + 200]! ^= 0x55)), 'error');
  });

  it('never inflates a member whose ISIZE is over 16 MiB or over deflate\'s 1032:1 limit (zlib judges it)', async () => {
    // Genuinely 20 MiB of zeros in one member: zlib decodes it.
    const big = Buffer.from(await ld().gzipMember(Buffer.alloc(20 << 20), 9));
    // 11 bytes claiming 8 MiB: zlib refuses it.
    const liar = Buffer.from(await ld().gzipMember(Buffer.from('hello world'), 6));
    liar.writeUInt32LE(8 << 20, liar.length - 4);
    for (const [member, expected] of [[big, 'ok'], [liar, 'error']] as const) {
      const got = await ours(member, 65_536);
      expect(got.inflated).toEqual([]);
      const reference = await zlibOutcome(member, 65_536);
      expect(got.result).toEqual(reference);
      expect('ok' in reference ? 'ok' : 'error').toBe(expected);
    }
  });

  it('agrees with zlib on randomly damaged streams (seeded)', async () => {
    const small = await collect(memberGzip(chunked(sample(100_000, 9), 4096), ld(), { blockSize: 32 * 1024 }));
    let seed = 12345;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 150; i++) {
      const b = Buffer.from(small);
      for (let k = 0; k <= rand(3); k++) b[rand(b.length)] = rand(256);
      const cut = rand(10) === 0 ? rand(b.length) : b.length;
      const input = b.subarray(0, cut);
      expect((await ours(input)).result).toEqual(await zlibOutcome(input));
    }
  });

  it('keeps the decompression-bomb guard', async () => {
    const zeros = await collect(memberGzip(chunked(Buffer.alloc(8 << 20), 1 << 20), ld(), { level: 9 }));
    const { stream: out } = await autoDecompress(chunked(zeros, 65_536), undefined, { maxRatio: 50, after: 4 << 20 });
    await expect(collect(out)).rejects.toMatchObject({ code: 'LAYER' });
    await expect(collect((await autoDecompress(chunked(zeros, 65_536), undefined, { maxRatio: 50, after: 4 << 20 })).stream)).rejects.toThrow(/decompression bomb/);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(collect(decompress('gzip', chunked(await stream(), 8192), ac.signal))).rejects.toThrow();
  });

  it('extractLayer refuses a damaged member layer with a TsbuildError', async () => {
    const dir = tempDir();
    try {
      const tar = makeTar([{ name: 'big', data: randomBytes(200_000).toString('latin1') }, { name: 'text', data: 'x'.repeat(300_000) }]);
      const layer = await collect(memberGzip(Readable.from([tar]), ld(), { blockSize: 64 * 1024 }));
      const ok = await extractLayer(Readable.from([layer]), `${dir}/ok`, { mode: 'apply' });
      expect(ok.entries).toBe(2);
      const m = members(layer);
      layer[m[2]![0] + m[2]![1] - 6]! ^= 1;
      await expect(extractLayer(Readable.from([layer]), `${dir}/bad`, { mode: 'apply' })).rejects.toMatchObject({ name: 'TsbuildError', code: 'LAYER' });
    } finally {
      cleanup(dir);
    }
  });

  it('with reused outputs, a reader that holds views for up to 1 MiB sees every byte as it was', async () => {
    const data = Buffer.concat([randomBytes(6 << 20), Buffer.alloc(3 << 20, 'text line '), randomBytes((1 << 20) + 123)]);
    const gz = await collect(memberGzip(chunked(data, 1 << 20), ld()));
    // Reads of odd sizes up to 1 MiB, each assembled from views of the chunks it spans (as the tar
    // reader does), and compared only once the next chunks have been pulled.
    const it = gunzipMembers(chunked(gz, 65536), ld(), () => { throw new Error("no zlib"); }, { reuseOutput: true })[Symbol.asyncIterator]();
    let buf: Buffer = Buffer.alloc(0);
    let at = 0;
    const sizes = [512, 1 << 20, 700_001, 513, (1 << 20) - 1, 4096];
    for (let i = 0; at < data.length; i++) {
      const n = Math.min(sizes[i % sizes.length] ?? 512, data.length - at);
      const parts: Buffer[] = [];
      let have = 0;
      while (have < n) {
        if (buf.length === 0) {
          const r = await it.next();
          if (r.done === true) throw new Error('ended early');
          buf = r.value;
        }
        const take = Math.min(n - have, buf.length);
        parts.push(buf.subarray(0, take));
        buf = buf.subarray(take);
        have += take;
      }
      expect(Buffer.concat(parts).equals(data.subarray(at, at + n))).toBe(true);
      at += n;
    }
    expect((await it.next()).done).toBe(true);
  });

  it('extracts a many-MiB member layer with reused outputs exactly (PAX records and files across chunk edges)', async () => {
    const dir = tempDir();
    try {
      const files = Array.from({ length: 12 }, (_, i) => ({ name: `d/f${i}`, data: randomBytes(600_000 + i * 7919).toString('latin1'), xattrs: i % 3 === 0 ? { 'user.k': 'v'.repeat(3000 + i) } : {} }));
      const tar = makeTar(files);
      const layer = await collect(memberGzip(chunked(tar, 1 << 20), ld()));
      const { diffId } = await extractLayer(Readable.from([layer]), `${dir}/x`, { mode: 'apply' });
      expect(diffId).toBe(sha256Digest(tar));
      for (const f of files) expect(readFileSync(`${dir}/x/${f.name}`).equals(Buffer.from(f.data))).toBe(true); // makeTar writes the data as UTF-8
    } finally {
      cleanup(dir);
    }
  });
});
