/**
 * FROM resolution: an image from the local store (by tag), or pulled from its registry, turned
 * into a stage state whose layers all have snapshot dirs ready to be overlay lowerdirs.
 */
import type { Digest, ImageConfig, Index, Manifest, Platform } from '../image/index.js';
import { isIndexMediaType } from '../image/index.js';
import { parseReference, type Reference } from '../image/reference.js';
import { extractLayer } from '../layers/index.js';
import type { RegistryClient } from '../registry/index.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';
import { limit } from '../util/limit.js';
import type { EventSink } from './events.js';
import { pullIntoStore } from './pull-image.js';
import type { LayerRef, StageState } from './state.js';

export interface BaseImage {
  reference: Reference;
  manifestDigest: Digest;
  state: StageState;
}

export async function resolveBaseImage(
  refText: string,
  deps: { store: Store; registry?: RegistryClient },
  options: { platform: Platform; pull: boolean; signal?: AbortSignal; onEvent?: EventSink },
): Promise<BaseImage> {
  const ref = parseReference(refText);
  const { store } = deps;
  let manifestDigest: Digest | undefined;
  if (!options.pull && ref.digest === undefined) {
    manifestDigest = (await store.tags.get(ref.toString()))?.digest;
  }
  if (ref.digest !== undefined && (await store.blobs.has(ref.digest))) manifestDigest = ref.digest;
  if (manifestDigest === undefined) {
    if (deps.registry === undefined) {
      throw new TsbuildError('NOT_FOUND', `image ${ref.familiar()} is not in the local store and no registry access is configured`);
    }
    // Layers unpack from the download stream and must match the config's diff_ids (pull-image.ts).
    const pulled = await pullIntoStore(store, deps.registry, ref, {
      platform: options.platform,
      tag: ref.digest === undefined,
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    manifestDigest = pulled.manifestDigest;
  }
  const manifest = await readManifestForPlatform(store, manifestDigest, options.platform, options.signal);
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest, signalOpt(options.signal));
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new TsbuildError('IMAGE', `image ${ref.familiar()}: ${manifest.layers.length} layers but ${diffIds.length} diff_ids`);
  }
  const layers: LayerRef[] = manifest.layers.map((descriptor, i) => ({ diffId: diffIds[i] as Digest, descriptor }));
  await ensureSnapshots(store, layers, options.signal);
  return {
    reference: ref,
    manifestDigest,
    state: { config, layers, key: `image:${manifestDigest}`, args: new Map(), argsOverEnv: new Set() },
  };
}

async function readManifestForPlatform(store: Store, digest: Digest, platform: Platform, signal?: AbortSignal): Promise<Manifest> {
  const doc = await store.blobs.readJson<Manifest | Index>(digest, { maxSize: 4 << 20, ...signalOpt(signal) });
  if (!('manifests' in doc) && !isIndexMediaType(doc.mediaType)) return doc;
  const index = doc as Index;
  const match = index.manifests.find((m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture);
  if (match === undefined) throw new TsbuildError('NOT_FOUND', `no manifest for ${platform.os}/${platform.architecture} in index ${digest}`);
  return readManifestForPlatform(store, match.digest, platform, signal);
}

/** Unpacks every layer that has no snapshot yet, two at a time (one per core). */
export async function ensureSnapshots(store: Store, layers: LayerRef[], signal?: AbortSignal): Promise<string[]> {
  const run = limit(2);
  return Promise.all(
    layers.map((layer) =>
      run(() =>
        store.snapshots.ensure(
          layer.diffId,
          async (dir, sig) => {
            const blob = await store.blobs.open(layer.descriptor.digest, signalOpt(sig));
            const { diffId } = await extractLayer(blob, dir, { mode: 'snapshot', ...signalOpt(sig) });
            // A snapshot serves every image whose config names this diffID: one that claims a
            // diffID its blob does not have (a loaded archive, a crafted manifest) must not fill it.
            if (diffId !== layer.diffId) {
              throw new TsbuildError('IMAGE', `layer ${layer.descriptor.digest} unpacks to ${diffId}, but the image config says ${layer.diffId}`);
            }
          },
          signalOpt(signal),
        ),
      ),
    ),
  );
}

export function signalOpt(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal !== undefined ? { signal } : {};
}
