/** SOURCE_DATE_EPOCH: created times set to the epoch, layer entry times clamped, and the same manifest digest from two empty stores. */
import { copyFile, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build, type BuildResult } from '../../src/builder/execute.js';
import type { Digest } from '../../src/image/index.js';
import { readTar } from '../../src/layers/index.js';
import type { Store } from '../../src/store/index.js';
import { BUSYBOX_DOCKERFILE, makeContext, newStore, tempDir } from './helpers.js';

const SDE = 1_700_000_000;
const cleanup: string[] = [];

afterAll(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

/** A fresh store: the busybox base FROM scratch, then a child with COPY and RUN, all under the epoch. */
async function buildFromEmpty(): Promise<{ store: Store; result: BuildResult }> {
  const { store, root } = await newStore();
  cleanup.push(root);
  const bb = await tempDir('bbctx');
  cleanup.push(bb);
  await copyFile(BUSYBOX_DOCKERFILE, join(bb, 'Dockerfile'));
  await copyFile('/bin/busybox', join(bb, 'busybox'));
  await build({ contextDir: bb, tags: ['docker.io/library/busybox:local'], sourceDateEpoch: SDE }, { store });
  const ctx = await makeContext({
    Dockerfile: 'FROM busybox:local\nENV GREETING=hi\nCOPY app.txt /app/\nWORKDIR /work\nRUN echo "$GREETING" > /app/run.txt && mkdir -p /var/lib/x && touch /var/lib/x/y\nCMD ["cat", "/app/run.txt"]\n',
    'app.txt': 'app\n',
  });
  cleanup.push(ctx);
  // Context files get a fresh mtime each time: only clamping makes the layers equal.
  const now = Date.now() / 1000;
  await utimes(join(ctx, 'app.txt'), now, now);
  const result = await build({ contextDir: ctx, sourceDateEpoch: SDE }, { store });
  return { store, result };
}

async function entryTimes(store: Store, digest: Digest): Promise<number[]> {
  const times: number[] = [];
  for await (const { header, body } of readTar(await store.blobs.open(digest) as AsyncIterable<Uint8Array>)) {
    times.push(header.mtime);
    for await (const _ of body) void _;
  }
  return times;
}

describe('reproducible builds', () => {
  it('two builds from empty stores give the same manifest digest, with times at the epoch', async () => {
    const a = await buildFromEmpty();
    await new Promise((r) => setTimeout(r, 1100)); // a later wall-clock second for the second build
    const b = await buildFromEmpty();
    expect(b.result.manifestDigest).toBe(a.result.manifestDigest);
    expect(b.result.configDigest).toBe(a.result.configDigest);
    const epoch = new Date(SDE * 1000).toISOString();
    expect(a.result.config.created).toBe(epoch);
    expect(new Set(a.result.config.history?.map((h) => h.created))).toEqual(new Set([epoch]));
    for (const layer of a.result.manifest.layers) {
      const times = await entryTimes(a.store, layer.digest);
      expect(times.length).toBeGreaterThan(0);
      expect(times.every((t) => t <= SDE)).toBe(true);
    }
  });
});
