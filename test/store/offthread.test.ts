/**
 * Large blobs are hashed and written on a worker thread (src/store/offthread.ts). The result must
 * be indistinguishable from the main-thread path: same digest, same bytes, nothing left on failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/image/digest.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, tempDir } from '../layers/fixtures.js';

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = tempDir();
  store = await openStore(join(dir, 'store'));
});
afterEach(() => cleanup(dir));

const MiB = 1 << 20;

/** `count` chunks of fresh buffers (some not owning their whole ArrayBuffer), and their sha256. */
function chunks(count: number, size: number): { parts: Buffer[]; digest: Digest; all: Buffer } {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    // Every third chunk is a view into a larger buffer: it must be copied, never detached; the
    // others own their whole ArrayBuffer and may move to the worker.
    parts.push(i % 3 === 0 ? randomBytes(size + 16).subarray(8, 8 + size) : randomBytes(size));
  }
  const all = Buffer.concat(parts);
  return { parts, all, digest: `sha256:${createHash('sha256').update(all).digest('hex')}` as Digest };
}

function from(parts: Buffer[], failAfter?: number): Readable {
  return Readable.from(
    (function* () {
      for (const [i, p] of parts.entries()) {
        if (failAfter !== undefined && i === failAfter) throw new Error('source broke');
        yield p;
      }
    })(),
  );
}

/** Files left under the store's tmp/ (its per-process dirs may stay; nothing inside them). */
function tmpFiles(): string[] {
  return readdirSync(join(store.root, 'tmp'), { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => e.name);
}

async function storedBlobs(): Promise<Digest[]> {
  const out: Digest[] = [];
  for await (const d of store.blobs.list()) out.push(d);
  return out;
}

describe('off-thread blob writes', () => {
  it('gives the same digest and bytes as hashing the content, with and without handing chunks over', async () => {
    for (const handOver of [true, false]) {
      const { parts, all, digest } = chunks(40, MiB);
      const got = await store.blobs.put(from(parts), { sizeHint: 40 * MiB, handOver });
      expect(got).toEqual({ digest, size: all.length, created: true });
      expect(readFileSync(store.blobs.path(digest)).equals(all)).toBe(true);
      // Handed over: the owned chunks moved (detached); views were copied and stay intact.
      expect(parts.filter((p) => p.byteLength === 0).length).toBe(handOver ? 26 : 0);
      expect(parts.filter((_, i) => i % 3 === 0).every((p) => p.byteLength === MiB)).toBe(true);
    }
  });

  it('gathers small chunks (network-sized reads) into whole buffers and keeps their order', async () => {
    const { parts, all, digest } = chunks(2600, 16 * 1024 + 7); // odd sizes straddle the staging buffers
    const got = await store.blobs.put(from(parts), { expectedSize: all.length, expected: digest });
    expect(got).toEqual({ digest, size: all.length, created: true });
    expect(readFileSync(store.blobs.path(digest)).equals(all)).toBe(true);
  });

  it('runs several large puts at once on the one worker', async () => {
    const sets = [chunks(34, MiB), chunks(36, MiB), chunks(33, MiB)];
    const got = await Promise.all(sets.map((s) => store.blobs.put(from(s.parts), { sizeHint: 64 * MiB, handOver: true })));
    expect(got.map((g) => g.digest)).toEqual(sets.map((s) => s.digest));
    for (const s of sets) expect(readFileSync(store.blobs.path(s.digest)).equals(s.all)).toBe(true);
  });

  it('stores nothing when the source fails half-way, and the next put still works', async () => {
    const { parts } = chunks(40, MiB);
    await expect(store.blobs.put(from(parts, 20), { sizeHint: 40 * MiB, handOver: true })).rejects.toThrow(/source broke/);
    expect(await storedBlobs()).toEqual([]);
    expect(tmpFiles()).toEqual([]);
    const next = chunks(33, MiB);
    expect((await store.blobs.put(from(next.parts), { sizeHint: 33 * MiB })).digest).toBe(next.digest);
  });

  it('refuses content that does not match the expected digest (expectedSize selects the worker)', async () => {
    const { parts, all } = chunks(36, MiB);
    const wrong = `sha256:${'0'.repeat(64)}` as Digest;
    const put = store.blobs.put(from(parts), { expected: wrong, expectedSize: all.length });
    await expect(put).rejects.toThrow(/digest mismatch/);
    await expect(put).rejects.toMatchObject({ code: 'STORE' });
    expect(await storedBlobs()).toEqual([]);
    expect(tmpFiles()).toEqual([]);
  });

  it('aborting mid-put stores nothing', async () => {
    const { parts } = chunks(40, MiB);
    const ac = new AbortController();
    function* slow(): Generator<Buffer> {
      for (const [i, p] of parts.entries()) {
        if (i === 25) ac.abort();
        yield p;
      }
    }
    await expect(store.blobs.put(Readable.from(slow()), { sizeHint: 40 * MiB, signal: ac.signal })).rejects.toThrow();
    expect(await storedBlobs()).toEqual([]);
    expect(tmpFiles()).toEqual([]);
  });
});
