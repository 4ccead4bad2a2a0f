import { join } from 'node:path';
import type { Digest } from '../../src/image/digest.js';
import { buildManifest, encodeConfig, encodeManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import type { Descriptor, ImageConfig } from '../../src/image/types.js';
import { commitLayer } from '../../src/layers/commit.js';
import type { Store } from '../../src/store/types.js';
import { makeTree, type Spec } from './fixtures.js';

export interface TestImage {
  manifest: Digest;
  config: ImageConfig;
  layers: Descriptor[];
}

/** Commits each tree as an uncompressed layer and stores config + OCI manifest. */
export async function buildImage(store: Store, dir: string, trees: Record<string, Spec>[]): Promise<TestImage> {
  const layers: Descriptor[] = [];
  for (const [i, tree] of trees.entries()) {
    const root = join(dir, `layer-src-${i}-${Math.random().toString(16).slice(2)}`);
    makeTree(root, tree);
    const { diffId, size } = await commitLayer(store, root, [], { sourceDateEpoch: 0 });
    layers.push({ mediaType: MediaType.OciLayer, digest: diffId, size });
  }
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  };
  const cfg = encodeConfig(config);
  await store.blobs.putBytes(cfg.bytes);
  const m = encodeManifest(buildManifest(cfg.descriptor, layers));
  await store.blobs.putBytes(m.bytes);
  return { manifest: m.descriptor.digest, config, layers };
}
