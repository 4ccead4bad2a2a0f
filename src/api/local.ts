/** Finding images in the local store by name or ID prefix, and loading their manifest and config. */
import type { Digest, ImageConfig, Manifest } from '../image/index.js';
import { parseReference, type Reference } from '../image/reference.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';

export interface LocalImage {
  /** The normalised tag name, e.g. "docker.io/library/busybox:latest". */
  name: string;
  /** The manifest digest the name points at. */
  digest: Digest;
}

export function safeRef(text: string): Reference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

/** A local image by reference (`busybox`, `app:v1`), or by a manifest/config digest or ID prefix (≥ 6 hex). */
export async function resolveLocal(store: Store, text: string): Promise<LocalImage> {
  const tags = await store.tags.list();
  const ref = safeRef(text)?.toString();
  const byName = ref !== undefined ? tags.find((t) => t.name === ref) : undefined;
  if (byName !== undefined) return { name: byName.name, digest: byName.descriptor.digest };
  const hex = text.replace(/^sha256:/, '');
  if (/^[a-f0-9]{6,64}$/.test(hex)) {
    for (const t of tags) {
      const cfg = (await store.blobs.readJson<Manifest>(t.descriptor.digest)).config.digest;
      if (t.descriptor.digest.slice(7).startsWith(hex) || cfg.slice(7).startsWith(hex)) return { name: t.name, digest: t.descriptor.digest };
    }
  }
  throw new TsbuildError('NOT_FOUND', `image ${text === '' ? '(none given)' : text} not found in the local store`, { hint: 'see `tsbuild images`' });
}

export async function loadImage(store: Store, manifestDigest: Digest): Promise<{ manifest: Manifest; config: ImageConfig }> {
  const manifest = await store.blobs.readJson<Manifest>(manifestDigest, { maxSize: 4 << 20 });
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest, { maxSize: 8 << 20 });
  return { manifest, config };
}

/** Every tag of the store that points at this manifest, in the store's order. */
export async function tagsOf(store: Store, manifestDigest: Digest): Promise<string[]> {
  return (await store.tags.list()).filter((t) => t.descriptor.digest === manifestDigest).map((t) => t.name);
}
