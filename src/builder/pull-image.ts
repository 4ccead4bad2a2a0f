/**
 * Pulling an image into the store, unpacked: the one implementation behind `tsbuild pull` and the
 * library's `pull()`. Each layer is unpacked from the bytes as they download (a tee of the stream
 * that also goes to the blob store), so the compressed blob is written once, never read back, and
 * the snapshot is done when the download is. A snapshot is claimed only once its blob is verified
 * and stored and its content hashes to the config's diffID. A GC lease keeps a concurrent prune
 * away from what is being written.
 */
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest } from '../image/index.js';
import type { Reference } from '../image/reference.js';
import { extractLayer } from '../layers/index.js';
import { pullImage, type BlobSink, type PlatformSpec, type PullResult, type RegistryClient, type TransferEvent } from '../registry/index.js';
import type { PutResult, Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';

export interface PullIntoStoreOptions {
  platform?: PlatformSpec;
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  /** Called once the manifest and config are known (for progress displays). */
  onManifest?: (manifest: Manifest, config: ImageConfig) => void;
  /** Tag the image under `ref`'s name (default true; FROM by digest does not). */
  tag?: boolean;
}

/** Pulls `ref`, unpacks every layer into a snapshot and (unless `tag: false`) tags the image under `ref`'s name. */
export function pullIntoStore(store: Store, client: RegistryClient, ref: Reference, options: PullIntoStoreOptions = {}): Promise<PullResult> {
  const signalOpt = options.signal !== undefined ? { signal: options.signal } : {};
  return store.withLease(async () => {
    const r = await pullUnpacked(store, client, ref, options);
    const descriptor = { mediaType: r.manifest.mediaType ?? MediaType.OciManifest, digest: r.manifestDigest, size: r.manifestBytes.length };
    if (options.tag !== false) await store.tags.set(ref.toString(), descriptor, signalOpt);
    return r;
  }, signalOpt);
}

/**
 * A pull that fails leaves the store as it was: the blobs and snapshots it made (the config, the
 * layers that did arrive) are taken out again; what was there before stays.
 */
async function pullUnpacked(store: Store, client: RegistryClient, ref: Reference, options: PullIntoStoreOptions): Promise<PullResult> {
  const made = { blobs: [] as Digest[], snapshots: [] as Digest[] };
  try {
    return await pullRecorded(store, client, ref, options, made);
  } catch (err) {
    for (const d of made.snapshots) await store.snapshots.remove(d).catch(() => undefined);
    for (const d of made.blobs) await store.blobs.delete(d).catch(() => undefined);
    throw err;
  }
}

function pullRecorded(store: Store, client: RegistryClient, ref: Reference, options: PullIntoStoreOptions, made: { blobs: Digest[]; snapshots: Digest[] }): Promise<PullResult> {
  const { signal } = options;
  const signalOpt = signal !== undefined ? { signal } : {};
  const sink: BlobSink = {
    has: (d) => store.blobs.has(d),
    size: (d) => store.blobs.size(d),
    put: async (source, o) => recordBlob(await store.blobs.put(source, o)),
    putBytes: async (data, o) => recordBlob(await store.blobs.putBytes(data, o)),
  };
  const recordBlob = (put: PutResult): PutResult => {
    if (put.created) made.blobs.push(put.digest);
    return put;
  };
  let layers: Descriptor[] = [];
  let diffIds: Digest[] = [];
  const diffIdOf = (layer: Descriptor): Digest => {
    const diffId = diffIds[layers.findIndex((l) => l.digest === layer.digest)];
    if (diffId === undefined) throw new TsbuildError('IMAGE', `${ref.toString()}: no diff_id for layer ${layer.digest}`);
    return diffId;
  };
  /** Unpacks `data` into the layer's snapshot; `ready` settles once the bytes are known to be good. */
  const unpack = async (layer: Descriptor, data: () => Promise<NodeJS.ReadableStream | AsyncIterable<Uint8Array>>, ready: Promise<void>): Promise<void> => {
    const diffId = diffIdOf(layer);
    let filled = false;
    await store.snapshots.ensure(
      diffId,
      async (dir, sig) => {
        const { diffId: actual } = await extractLayer(await data(), dir, { mode: 'snapshot', ...(sig !== undefined ? { signal: sig } : {}) }).catch((err: unknown) => {
          throw inLayer(ref, layer, err);
        });
        if (actual !== diffId) throw new TsbuildError('IMAGE', `${ref.toString()}: layer ${layer.digest} unpacks to ${actual}, but the config says ${diffId}`);
        await ready;
        filled = true;
      },
      signalOpt,
    );
    if (filled) made.snapshots.push(diffId);
  };
  return pullImage(client, ref, sink, {
    ...signalOpt,
    ...(options.platform !== undefined ? { platform: options.platform } : {}),
    ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
    onManifest: (m, c) => {
      layers = m.layers;
      diffIds = c.rootfs.diff_ids;
      if (diffIds.length !== layers.length) throw new TsbuildError('IMAGE', `${ref.toString()}: ${layers.length} layers but ${diffIds.length} diff_ids`);
      // A blob listed twice is fetched and unpacked once, against its first diff_id: a second,
      // different diff_id would name a snapshot nothing verified.
      for (const [i, layer] of layers.entries()) {
        if (diffIds[i] !== diffIdOf(layer)) throw new TsbuildError('IMAGE', `${ref.toString()}: layer ${layer.digest} is listed twice with different diff_ids`);
      }
      options.onManifest?.(m, c);
    },
    onLayerData: (layer, data, stored) => unpack(layer, () => Promise.resolve(data), stored),
    // Layers already in the store, or downloaded again after a dropped connection, unpack from the blob.
    onLayer: (layer) => unpack(layer, () => store.blobs.open(layer.digest, signalOpt), Promise.resolve()),
  });
}

/** An unpack failure named by image and layer (the extractor only knows the entry). */
function inLayer(ref: Reference, layer: Descriptor, err: unknown): Error {
  if (err instanceof Error && err.name === 'AbortError') return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = err instanceof TsbuildError ? err.code : 'LAYER';
  return new TsbuildError(code, `${ref.toString()}: layer ${layer.digest}: ${message}`, { cause: err });
}
