import { isIndexMediaType } from '../image/mediatypes.js';
import type { Digest } from '../image/digest.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.js';
import type { Reference } from '../image/reference.js';
import { limit } from '../util/limit.js';
import type { RegistryClient } from './client.js';
import { downloadBlob, fetchBlobBytes } from './blobs.js';
import { RegistryError } from './errors.js';
import { fetchManifest, parseManifest, resolveManifest, selectPlatform } from './manifest.js';
import { withLayerCounts } from './progress.js';
import type { BlobSink, PlatformSpec, TransferEvent } from './types.js';

export interface PullOptions {
  platform?: PlatformSpec;
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  /** Parallel layer downloads (default 3, as docker). */
  concurrency?: number;
  /** Called as each layer blob is in the sink, so the caller can extract while others download. */
  onLayer?: (desc: Descriptor) => Promise<void>;
  /**
   * Gets each downloaded layer's bytes while they arrive (see BlobFetchOptions.tee), to unpack a
   * layer during its download instead of re-reading the blob after it; `onLayer` still follows.
   */
  onLayerData?: (desc: Descriptor, data: AsyncIterable<Buffer>, stored: Promise<void>) => Promise<void>;
  /** Called once the image manifest and config are known, before any layer is fetched. */
  onManifest?: (manifest: Manifest, config: ImageConfig) => void | Promise<void>;
}

export interface PullResult {
  manifestDigest: Digest;
  manifest: Manifest;
  manifestBytes: Buffer;
  config: ImageConfig;
  configDigest: Digest;
  indexDigest?: Digest;
}

const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** Pull one platform's image into the sink: manifest(s), config, then layers in parallel. */
export async function pullImage(client: RegistryClient, ref: Reference, sink: BlobSink, options: PullOptions = {}): Promise<PullResult> {
  const { signal } = options;
  const so = signal ? { signal } : {};
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const top = await resolveManifest(client, ref, so);
  // Blobs come from the host that served the manifest, then the rest as fallbacks.
  const hosts = [top.host, ...(await client.pullHosts(ref.registry, ref.digest !== undefined)).filter((h) => h !== top.host)];
  let indexDigest: Digest | undefined;
  let image = top;
  if (isIndexMediaType(top.mediaType)) {
    indexDigest = top.digest;
    const index = JSON.parse(top.bytes.toString('utf8')) as Index;
    if (!Array.isArray(index.manifests)) throw new RegistryError(`${ref.toString()}: malformed index`);
    const desc = selectPlatform(index, platform, ref.toString());
    const expected = { mediaType: desc.mediaType, size: desc.size };
    image = { ...(await fetchManifest(client, top.host, ref.repository, desc.digest, { ...so, expected })), host: top.host };
    if (isIndexMediaType(image.mediaType)) throw new RegistryError(`${ref.toString()}: nested index is not supported`);
  }
  const manifest = parseManifest(image.bytes, ref.toString());
  const configBytes = await fetchBlobBytes(client, hosts, ref.repository, manifest.config, MAX_CONFIG_BYTES, signal);
  let config: ImageConfig;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new RegistryError(`${ref.toString()}: image config is not valid JSON`, { cause: err });
  }
  await sink.putBytes(configBytes, { expected: manifest.config.digest, ...so });
  await options.onManifest?.(manifest, config);

  const run = limit(options.concurrency ?? 3);
  const seen = new Set<string>();
  const unique = manifest.layers.filter((l) => !seen.has(l.digest) && seen.add(l.digest));
  const onProgress = withLayerCounts(unique.map((l) => l.digest), options.onProgress);
  // One failed layer stops the other downloads, and the error is reported only once every layer
  // task (and the unpacking it drives) has settled: nothing keeps writing after pullImage returns.
  const stop = new AbortController();
  const forward = (): void => stop.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });
  let firstError: { error: unknown } | undefined;
  try {
    await Promise.all(
      unique.map((layer) =>
        run(async () => {
          stop.signal.throwIfAborted();
          const stored = await sink.size(layer.digest);
          if (stored !== undefined) {
            // The bytes are the digest's, so a different size is the manifest's error: a download
            // would have refused it, and a later push of this manifest would be refused too.
            if (stored !== layer.size) throw new RegistryError(`${ref.toString()}: layer ${layer.digest} is ${stored} bytes, but the manifest declares ${layer.size}`);
            onProgress?.({ kind: 'blob', digest: layer.digest, phase: 'exists', bytes: layer.size, total: layer.size });
          } else {
            const { onLayerData } = options;
            await downloadBlob(client, hosts, ref.repository, layer, sink, {
              signal: stop.signal,
              ...(onProgress ? { onProgress } : {}),
              ...(onLayerData ? { tee: (data: AsyncIterable<Buffer>, stored: Promise<void>) => onLayerData(layer, data, stored) } : {}),
            });
          }
          await options.onLayer?.(layer);
        }).catch((error: unknown) => {
          firstError ??= { error };
          stop.abort(error);
        }),
      ),
    );
  } finally {
    signal?.removeEventListener('abort', forward);
  }
  signal?.throwIfAborted();
  if (firstError !== undefined) throw firstError.error;
  // The manifest goes in last: its presence means everything it names is present.
  await sink.putBytes(image.bytes, { expected: image.digest, ...so });
  if (indexDigest !== undefined) await sink.putBytes(top.bytes, { expected: indexDigest, ...so });
  return {
    manifestDigest: image.digest,
    manifest,
    manifestBytes: image.bytes,
    config,
    configDigest: manifest.config.digest,
    ...(indexDigest !== undefined ? { indexDigest } : {}),
  };
}
