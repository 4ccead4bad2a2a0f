/**
 * Turns a finished stage state into an image in the store: config blob, OCI manifest blob,
 * and a tag per requested name. Layers are already blobs (built ones uncompressed).
 */
import { goContainerConfig, MediaType, type Descriptor, type Digest, type HistoryEntry, type ImageConfig, type Manifest } from '../image/index.js';
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
  options: { created: string; sourceDateEpoch?: number; signal?: AbortSignal },
): Promise<CommittedImage> {
  const history = fillHistoryTimes(state.config.history ?? []);
  const config: ImageConfig = {
    ...state.config,
    ...(state.config.config !== undefined ? { config: goContainerConfig(state.config.config) } : {}),
    // BuildKit's exporter: the config time is the last history entry's, unless an epoch is set.
    created: options.sourceDateEpoch !== undefined ? options.created : (history.at(-1)?.created ?? options.created),
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffId) },
    history,
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

/**
 * Entries without a time (metadata steps) get one as BuildKit's exporter fills them: a leading
 * run takes the first time that follows it (else the last before); later ones take the most
 * recent time before them.
 */
export function fillHistoryTimes(history: HistoryEntry[]): HistoryEntry[] {
  const out = history.map((h) => ({ ...h }));
  const start = out.findIndex((h) => h.created === undefined);
  if (start < 0) return out;
  let end = start;
  while (out[end] !== undefined && out[end]?.created === undefined) end++;
  const leading = out[end]?.created ?? out.slice(0, start).findLast((h) => h.created !== undefined)?.created;
  if (leading === undefined) return out;
  let last = leading;
  for (const [i, h] of out.entries()) {
    if (h.created !== undefined) last = h.created;
    else if (i < end) h.created = leading;
    else h.created = last;
  }
  return out;
}
