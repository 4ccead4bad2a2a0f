/**
 * An image must not be able to change what another image in the same store gets: snapshots and
 * the compressed-layer cache are keyed by diffID, so a diffID an archive or config merely claims
 * is checked before either is filled. And a load that fails, or carries files no image uses,
 * leaves no blob behind.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureSnapshots } from '../../src/builder/base.js';
import type { Digest } from '../../src/image/digest.js';
import { encodeConfig } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { importArchive } from '../../src/layers/import.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, makeTar, tempDir, type RawEntry } from './fixtures.js';

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = tempDir();
  store = await openStore(join(dir, 'store'));
});
afterEach(() => cleanup(dir));

const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

async function blobs(): Promise<Digest[]> {
  const out: Digest[] = [];
  for await (const d of store.blobs.list()) out.push(d);
  return out.sort();
}

/** The victim's layer (a deterministic build anyone can reproduce) and an attacker's. */
const victim = makeTar([{ name: 'hello.txt', data: 'hello\n' }]);
const evil = makeTar([{ name: 'hello.txt', data: 'BACKDOOR\n' }, { name: 'evil.sh', data: 'echo pwned\n' }]);

/** A docker-archive (`docker save` layout) whose config names `diffIds` for `layers`. */
function dockerArchive(layers: Buffer[], diffIds: Digest[], extra: RawEntry[] = []): Buffer {
  const config = encodeConfig({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } });
  const entries: RawEntry[] = [{ name: 'config.json', data: Buffer.from(config.bytes) }, ...layers.map((l, i) => ({ name: `l${i}/layer.tar`, data: l })), ...extra];
  entries.push({ name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['evil:1'], Layers: layers.map((_, i) => `l${i}/layer.tar`) }]) });
  return makeTar(entries);
}

describe('load', () => {
  it('refuses a docker archive whose gzip layer claims another diffID, and keeps none of it', async () => {
    const before = await blobs();
    const archive = dockerArchive([gzipSync(evil)], [sha(victim)]);
    await expect(importArchive(store, Readable.from([archive]))).rejects.toThrow(/layer l0\/layer.tar unpacks to sha256:[0-9a-f]{64}, but the config says/);
    expect(await store.compressed.get(sha(victim), 'gzip')).toBeUndefined();
    expect(await blobs()).toEqual(before);
  });

  it('records the compressed form of a layer whose diffID checks out', async () => {
    const gz = gzipSync(victim);
    await importArchive(store, Readable.from([dockerArchive([gz], [sha(victim)])]));
    expect((await store.compressed.get(sha(victim), 'gzip'))?.digest).toBe(sha(gz));
  });

  it('keeps only what the loaded images use: no blob for stray files of the archive', async () => {
    const archive = dockerArchive([victim], [sha(victim)], [{ name: 'l0/json', data: '{"id":"x"}' }, { name: 'l0/VERSION', data: '1.0' }, { name: 'junk.bin', data: 'z'.repeat(300_000) }]);
    const [loaded] = await importArchive(store, Readable.from([archive]));
    const manifest = await store.blobs.readJson<{ config: { digest: Digest }; layers: { digest: Digest }[] }>(loaded!.manifest);
    expect(await blobs()).toEqual([loaded!.manifest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)].sort());
  });

  it('a file that is no image archive leaves the store as it was', async () => {
    const before = await blobs();
    const junk = makeTar([{ name: 'a.bin', data: 'a'.repeat(400_000) }, { name: 'b/c', data: 'c' }]);
    await expect(importArchive(store, Readable.from([junk]))).rejects.toThrow(/not an image archive/);
    expect(await blobs()).toEqual(before);
  });
});

describe('snapshots', () => {
  it('a layer whose blob does not unpack to the diffID its config claims fills no snapshot', async () => {
    const blob = await store.blobs.putBytes(gzipSync(evil));
    const layer = { diffId: sha(victim), descriptor: { mediaType: MediaType.OciLayerGzip, digest: blob.digest, size: blob.size } };
    await expect(ensureSnapshots(store, [layer])).rejects.toMatchObject({ code: 'IMAGE' });
    expect(await store.snapshots.has(sha(victim))).toBe(false);
    // The honest layer still unpacks under its own diffID.
    const good = await store.blobs.putBytes(gzipSync(victim));
    const [path] = await ensureSnapshots(store, [{ diffId: sha(victim), descriptor: { mediaType: MediaType.OciLayerGzip, digest: good.digest, size: good.size } }]);
    expect(path).toBe(store.snapshots.path(sha(victim)));
  });
});
