/**
 * The busybox base built by tsbuild is pushed to a real Distribution registry, then a fresh store
 * builds `FROM <registry>/busybox` — base resolution through pull + snapshot extraction.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/execute.js';
import { MediaType, type Manifest } from '../../src/image/index.js';
import { parseReference } from '../../src/image/reference.js';
import { compressLayer } from '../../src/layers/index.js';
import { pushImage, RegistryClient } from '../../src/registry/index.js';
import type { Store } from '../../src/store/index.js';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { buildBusybox, imageOf, makeContext, newStore, readInImage } from './helpers.js';

let registry: RunningRegistry;
const dirs: string[] = [];
let source: Store;

beforeAll(async () => {
  registry = await startRegistry({ mode: 'open' });
  const s = await newStore();
  source = s.store;
  dirs.push(s.root);
});

afterAll(async () => {
  await registry.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('busybox base through the registry', () => {
  it('pushes the tsbuild-built busybox, and a fresh store builds FROM it', async () => {
    const bb = await buildBusybox(source);
    const layers = await Promise.all(bb.manifest.layers.map((l) => compressLayer(source, l.digest, { format: 'gzip' })));
    const manifest: Manifest = { ...bb.manifest, layers };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const ref = parseReference(`${registry.host}/tsbuild/busybox:local`);
    const client = new RegistryClient({});
    const pushed = await pushImage(client, source.blobs, ref, { manifestBytes: bytes, manifestMediaType: MediaType.OciManifest, manifest });
    expect(pushed.digest).toMatch(/^sha256:[a-f0-9]{64}$/);

    const fresh = await newStore();
    dirs.push(fresh.root);
    const ctx = await makeContext({ Dockerfile: `FROM ${registry.host}/tsbuild/busybox:local\nRUN echo pulled > /proof\n` });
    dirs.push(ctx);
    const result = await build({ contextDir: ctx, tags: ['docker.io/library/proof:1'] }, { store: fresh.store, registry: client });
    const { view, config } = await imageOf(fresh.store, result.manifestDigest);
    expect(await readInImage(view, '/proof')).toBe('pulled\n');
    expect(config.rootfs.diff_ids.slice(0, 3)).toEqual(bb.config.rootfs.diff_ids);
    expect(await fresh.store.tags.get(ref.toString())).toMatchObject({ digest: pushed.digest });
  });

  it('refuses a base whose layer does not unpack to the config diff_id: build fails at FROM, nothing unpacked or tagged', async () => {
    const bb = await buildBusybox(source);
    const layers = await Promise.all(bb.manifest.layers.map((l) => compressLayer(source, l.digest, { format: 'gzip' })));
    // The config lies about the first layer (the diff_id of another layer).
    const lying = { ...bb.config, rootfs: { type: 'layers', diff_ids: [bb.config.rootfs.diff_ids[1]!, ...bb.config.rootfs.diff_ids.slice(1)] } };
    const configBytes = Buffer.from(JSON.stringify(lying));
    const config = await source.blobs.putBytes(configBytes);
    const manifest: Manifest = { ...bb.manifest, config: { ...bb.manifest.config, digest: config.digest, size: config.size }, layers };
    const ref = parseReference(`${registry.host}/tsbuild/lying:1`);
    const client = new RegistryClient({});
    await pushImage(client, source.blobs, ref, { manifestBytes: Buffer.from(JSON.stringify(manifest)), manifestMediaType: MediaType.OciManifest, manifest });

    const fresh = await newStore();
    dirs.push(fresh.root);
    const ctx = await makeContext({ Dockerfile: `FROM ${ref.toString()}\nRUN true\n` });
    dirs.push(ctx);
    await expect(build({ contextDir: ctx }, { store: fresh.store, registry: client })).rejects.toMatchObject({
      code: 'IMAGE',
      message: expect.stringContaining('but the config says') as unknown,
    });
    expect(await fresh.store.tags.get(ref.toString())).toBeUndefined();
    // The mislabelled layer was unpacked, found to be diff_ids[0], and not kept under either name.
    expect(await fresh.store.snapshots.has(bb.config.rootfs.diff_ids[0]!)).toBe(false);
  });
});
