import { sha256Digest, type Digest } from '../image/digest.js';
import type { Descriptor, Manifest } from '../image/types.js';
import type { Reference } from '../image/reference.js';
import { limit } from '../util/limit.js';
import { RegistryClient, pushScope } from './client.js';
import { RegistryError } from './errors.js';
import { withLayerCounts } from './progress.js';
import { uploadBlob, type UploadOptions } from './upload.js';
import { MAX_MANIFEST_BYTES, type BlobSource, type TransferEvent } from './types.js';

export interface PushImage {
  manifestBytes: Buffer;
  manifestMediaType: string;
  manifest: Manifest;
}

export interface PushOptions {
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  chunkSize?: number;
  mountFrom?: string[];
  /** Parallel blob uploads (default 3). */
  concurrency?: number;
}

/** Push order is layers → config → manifest, so the registry never holds a dangling manifest. */
export async function pushImage(client: RegistryClient, source: BlobSource, ref: Reference, image: PushImage, options: PushOptions = {}): Promise<{ digest: Digest }> {
  const { signal } = options;
  const digest = sha256Digest(image.manifestBytes);
  if (ref.digest !== undefined && ref.digest !== digest) {
    throw new RegistryError(`${ref.toString()}: manifest digest is ${digest}, not the one in the reference`);
  }
  if (image.manifestBytes.length > MAX_MANIFEST_BYTES) throw new RegistryError(`${ref.toString()}: manifest too large (${image.manifestBytes.length} bytes)`);
  const onProgress = withLayerCounts([...new Set(image.manifest.layers.map((l) => l.digest))], options.onProgress);
  const uo: UploadOptions = {
    ...(signal ? { signal } : {}),
    ...(onProgress ? { onProgress } : {}),
    ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
    ...(options.mountFrom ? { mountFrom: options.mountFrom } : {}),
  };
  const upload = (d: Descriptor): Promise<unknown> =>
    // One upload per digest per repository, even across concurrent pushes on this client.
    client.uploadOnce(`${ref.registry}/${ref.repository}@${d.digest}`, () => uploadBlob(client, ref.registry, ref.repository, d, source, uo));
  const run = limit(options.concurrency ?? 3);
  const seen = new Set<string>();
  const layers = image.manifest.layers.filter((l) => !seen.has(l.digest) && seen.add(l.digest));
  await Promise.all(layers.map((l) => run(() => upload(l))));
  if (!seen.has(image.manifest.config.digest)) await upload(image.manifest.config);

  const res = await client.send({
    host: ref.registry,
    method: 'PUT',
    path: `/v2/${ref.repository}/manifests/${ref.tag ?? digest}`,
    scopes: [pushScope(ref.repository)],
    headers: { 'content-type': image.manifestMediaType },
    body: image.manifestBytes,
    ...(signal ? { signal } : {}),
  });
  if (res.statusCode !== 201 && res.statusCode !== 200) return RegistryClient.fail(`manifest ${ref.toString()}`, res);
  await res.body.dump();
  const reported = res.headers['docker-content-digest'];
  if (typeof reported === 'string' && reported !== digest) {
    throw new RegistryError(`manifest ${ref.toString()}: registry stored digest ${reported}, expected ${digest}`);
  }
  return { digest };
}
