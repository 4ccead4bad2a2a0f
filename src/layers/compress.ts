/**
 * Lazy layer compression with a per-store cache (diffID + format → compressed descriptor), so
 * an output compresses a layer at most once and a second push/export does no work. Several
 * layers compress in parallel (gzip runs on the libuv pool, zstd in its own process); callers
 * bound concurrency with `limit()`. The level only matters for the first compression of a layer.
 */
import { pipeline as pipeStreams } from 'node:stream';
import type { Digest } from '../image/digest.js';
import { layerCompression, MediaType } from '../image/mediatypes.js';
import type { Descriptor } from '../image/types.js';
import type { CompressionFormat, Store } from '../store/types.js';
import { TsbuildError } from '../util/errors.js';
import { singleflight } from '../util/limit.js';
import { compressStream, decompress } from './codec.js';

const inflight = singleflight<string, Descriptor>();

const MEDIA: Record<CompressionFormat, string> = { gzip: MediaType.OciLayerGzip, zstd: MediaType.OciLayerZstd };

/**
 * A readable of the uncompressed tar for `diffId`, from the plain blob or a cached compressed one;
 * `size` is the plain blob's size (undefined when the tar comes out of a compressed copy).
 */
async function uncompressedSource(store: Store, diffId: Digest, signal?: AbortSignal): Promise<{ stream: AsyncIterable<Buffer>; size?: number }> {
  const opts = signal ? { signal } : {};
  const size = await store.blobs.size(diffId);
  if (size !== undefined) return { stream: (await store.blobs.open(diffId, opts)) as AsyncIterable<Buffer>, size };
  for (const format of ['gzip', 'zstd'] as const) {
    const desc = await store.compressed.get(diffId, format);
    if (desc !== undefined && (await store.blobs.has(desc.digest))) {
      const compressed = (await store.blobs.open(desc.digest, opts)) as AsyncIterable<Buffer>;
      return { stream: decompress(layerCompression(desc.mediaType) ?? format, compressed, signal) };
    }
  }
  throw new TsbuildError('NOT_FOUND', `layer ${diffId} is not in the store (neither uncompressed nor compressed)`);
}

/** Sees every compressed chunk before it is stored (a live upload); its promise is backpressure. */
export type CompressedTap = (chunk: Buffer) => Promise<void>;

/** The cached compressed form of `diffId`, if its blob is still in the store. */
export async function cachedCompression(store: Store, diffId: Digest, format: CompressionFormat): Promise<Descriptor | undefined> {
  const cached = await store.compressed.get(diffId, format);
  return cached !== undefined && (await store.blobs.has(cached.digest)) ? cached : undefined;
}

async function compressOnce(store: Store, diffId: Digest, format: CompressionFormat, level: number | undefined, tap: CompressedTap | undefined, signal?: AbortSignal): Promise<Descriptor> {
  const cached = await cachedCompression(store, diffId, format);
  if (cached !== undefined) return cached;
  const source = await uncompressedSource(store, diffId, signal);
  const compressor = compressStream(format, level);
  const compressed = pipeStreams(source.stream as NodeJS.ReadableStream, compressor, () => undefined);
  const out = tap === undefined ? compressed : tapped(compressed as AsyncIterable<Buffer>, tap);
  // The uncompressed size says whether the compressed blob is big enough to be hashed and written
  // on the I/O worker: the main thread is busy feeding the compressor and the upload.
  const { digest, size } = await store.blobs.put(out, { sizeHint: source.size ?? 0, ...(signal ? { signal } : {}) });
  const descriptor: Descriptor = { mediaType: MEDIA[format], digest, size };
  await store.compressed.set(diffId, format, descriptor);
  return descriptor;
}

async function* tapped(source: AsyncIterable<Buffer>, tap: CompressedTap): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    await tap(chunk);
    yield chunk;
  }
}

/**
 * The descriptor of `diffId` in `format`, compressing (and caching) only if needed. `tap` sees the
 * compressed bytes when this call is the one compressing (not when cached or already in flight).
 */
export async function compressLayer(
  store: Store,
  diffId: Digest,
  options: { format: CompressionFormat | 'none'; level?: number; signal?: AbortSignal; tap?: CompressedTap },
): Promise<Descriptor> {
  const { format, level, signal, tap } = options;
  if (format === 'none') {
    const size = await store.blobs.size(diffId);
    if (size !== undefined) return { mediaType: MediaType.OciLayer, digest: diffId, size };
    const source = await uncompressedSource(store, diffId, signal);
    const put = await store.blobs.put(source.stream, signal ? { expected: diffId, signal } : { expected: diffId });
    return { mediaType: MediaType.OciLayer, digest: put.digest, size: put.size };
  }
  return inflight(`${store.root}\0${diffId}\0${format}`, () => compressOnce(store, diffId, format, level, tap, signal));
}
