/**
 * Pushing a local image: the one implementation behind `tsbuild push`, `build --push` and the
 * library's `push()`. Each built (uncompressed) layer is compressed once — the result is cached in
 * the store — two layers at a time (see compressOne); a large layer is
 * uploaded while it compresses (registry/upload-live.ts), a small one once ready, so uploads overlap
 * compression; config and manifest go last. A GC lease keeps a concurrent prune away from the
 * compressed blobs made here.
 */
import { MediaType, type Descriptor, type Digest, type Manifest } from '../image/index.js';
import { parseReference } from '../image/reference.js';
import { cachedCompression, compressLayer } from '../layers/index.js';
import { LiveUpload, pushImage, uploadBlob, type RegistryClient, type TransferEvent } from '../registry/index.js';
import type { Store } from '../store/index.js';
import { limit } from '../util/limit.js';
import { loadImage, resolveLocal } from './local.js';

export interface PushLocalOptions {
  /** How built (uncompressed) layers go up; already-compressed (pulled) layers are sent as they are. */
  compression?: 'gzip' | 'zstd' | 'uncompressed';
  level?: number;
  /** Layers compressed and uploaded at once (default 3). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  /** Called as each layer's pushed descriptor is known (for progress displays). */
  onLayerReady?: (ready: Descriptor[], total: number) => void;
}

export interface PushLocalResult {
  reference: string;
  digest: Digest;
  /** Size of the manifest as pushed. */
  size: number;
}

/** Layers at least this large (uncompressed) are uploaded while they compress. */
const LIVE_MIN = 8 * 1024 * 1024;

export function pushLocalImage(store: Store, client: RegistryClient, source: string, destination: string, options: PushLocalOptions = {}): Promise<PushLocalResult> {
  const signalOpt = options.signal !== undefined ? { signal: options.signal } : {};
  return store.withLease(() => pushLeased(store, client, source, destination, options), signalOpt);
}

async function pushLeased(store: Store, client: RegistryClient, source: string, destination: string, options: PushLocalOptions): Promise<PushLocalResult> {
  const local = await resolveLocal(store, source);
  const ref = parseReference(destination);
  const { manifest } = await loadImage(store, local.digest);
  const format = options.compression === 'uncompressed' ? 'none' : (options.compression ?? 'gzip');
  const signalOpt = options.signal !== undefined ? { signal: options.signal } : {};
  const uo = { ...signalOpt, ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}) };
  const run = limit(options.concurrency ?? 3);
  // Two layers compress at once. Each already uses both cores (parallel gzip), but a layer of
  // incompressible data is bound by moving its bytes (read, hash, upload, the registry's hashing and
  // writing), not by deflate: next to a compressible one, the cores stay busy. A 400 MB image on a
  // Debian base: 4.50 -> 4.13 s (hyperfine, 4 runs each, same minute).
  const compressOne = limit(2);
  const upload = async (d: Descriptor, stream: LiveUpload | undefined): Promise<Descriptor> => {
    let ours = false;
    await client.uploadOnce(`${ref.registry}/${ref.repository}@${d.digest}`, () => {
      ours = true;
      return stream !== undefined ? stream.finish(d, store.blobs) : uploadBlob(client, ref.registry, ref.repository, d, store.blobs, uo);
    });
    if (!ours) stream?.cancel(); // another upload of the same blob was already under way
    return d;
  };
  const ready: Descriptor[] = [];
  const live = new Set<Digest>();
  const layers = await Promise.all(
    manifest.layers.map((l) =>
      run(async () => {
        if (l.mediaType !== MediaType.OciLayer) return upload(l, undefined);
        let stream: LiveUpload | undefined;
        const d = await compressOne(async () => {
          // A large layer not yet compressed goes up while it compresses (one streamed PATCH); the
          // same layer twice in one image, or a small one, is uploaded from the store afterwards.
          if (format !== 'none' && l.size > LIVE_MIN && !live.has(l.digest) && (await cachedCompression(store, l.digest, format)) === undefined) {
            live.add(l.digest);
            stream = await LiveUpload.start(client, ref.registry, ref.repository, uo);
          }
          const tap = stream !== undefined ? stream.write.bind(stream) : undefined;
          return compressLayer(store, l.digest, { format, ...(options.level !== undefined ? { level: options.level } : {}), ...signalOpt, ...(tap ? { tap } : {}) });
        }).catch((err: unknown) => {
          stream?.cancel();
          throw err;
        });
        ready.push(d);
        options.onLayerReady?.(ready, manifest.layers.length);
        return upload(d, stream);
      }),
    ),
  );
  const pushed: Manifest = { ...manifest, layers };
  const bytes = Buffer.from(JSON.stringify(pushed));
  const result = await pushImage(client, store.blobs, ref, { manifestBytes: bytes, manifestMediaType: pushed.mediaType ?? MediaType.OciManifest, manifest: pushed }, uo);
  return { reference: ref.toString(), digest: result.digest, size: bytes.length };
}
