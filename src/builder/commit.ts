/**
 * Turns a finished stage state into an image in the store: config blob, OCI manifest blob,
 * and a tag per requested name. Layers are already blobs (built ones uncompressed).
 */
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../image/index.js';
import type { Store } from '../store/index.js';
import type { StageState } from './state.js';

export interface CommittedImage {
  manifestDigest: Digest;
  manifestDescriptor: Descriptor;
  configDigest: Digest;
  manifest: Manifest;
  config: ImageConfig;
}

export async function commitImage(
  store: Store,
  state: StageState,
  options: { created: string; signal?: AbortSignal },
): Promise<CommittedImage> {
  const config: ImageConfig = {
    ...state.config,
    created: options.created,
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) },
  };
  const configBytes = JSON.stringify(config);
  const signalOpt = options.signal !== undefined ? { signal: options.signal } : {};
  const cfg = await store.blobs.putBytes(configBytes, signalOpt);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: state.layers.map((l) => l.descriptor),
  };
  const man = await store.blobs.putBytes(JSON.stringify(manifest), signalOpt);
  return {
    manifestDigest: man.digest,
    manifestDescriptor: { mediaType: MediaType.OciManifest, digest: man.digest, size: man.size },
    configDigest: cfg.digest,
    manifest,
    config,
  };
}
