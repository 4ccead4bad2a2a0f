/**
 * `--build-context NAME=oci-layout://DIR[:TAG][@DIGEST]`: the image in an OCI image layout on disk
 * (what `skopeo copy ... oci:DIR:TAG` or `tsbuild save`'s unpacked tar hold). The manifest is picked
 * as buildx picks it — by digest when given, else by the `org.opencontainers.image.ref.name` TAG
 * (default `latest`), an index narrowed to the build's platform — and its blobs are copied into the
 * store, each verified against its digest and size, so the base resolves like any local image.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, isDigest, looksLikeIndex, parseIndex, parseManifest, splitTagDigest, type Digest, type Platform } from '../image/index.js';
import { selectPlatform } from '../registry/index.js';
import { REF_NAME } from '../store/tags.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';

const MAX_DOCUMENT = 4 << 20;

export interface OciLayoutSource {
  dir: string;
  tag?: string;
  digest?: Digest;
}

/** `DIR[:TAG][@DIGEST]` as buildx reads it (a tag is a last path component's `:suffix`). */
export function parseOciLayoutSource(text: string): OciLayoutSource {
  const { rest, tag, digest } = splitTagDigest(text, text.lastIndexOf('@'));
  if (digest !== undefined && !isDigest(digest)) throw new TsbuildError('USAGE', `oci-layout://${text}: digest must be sha256:<64 lowercase hex>`);
  if (rest === '') throw new TsbuildError('USAGE', `oci-layout://${text}: no directory`);
  return { dir: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** Copies the chosen image's blobs into the store; the digest of its (platform) manifest. */
export async function importOciLayout(store: Store, source: OciLayoutSource, platform: Platform, signal?: AbortSignal): Promise<Digest> {
  const where = `oci-layout://${source.dir}`;
  const index = parseIndex(await readDocument(join(source.dir, 'index.json'), where));
  let chosen: { digest: Digest; size?: number };
  if (source.digest !== undefined) {
    const listed = index.manifests.find((m) => m.digest === source.digest);
    chosen = listed ?? { digest: source.digest };
  } else {
    const tag = source.tag ?? 'latest';
    const listed = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
    if (listed === undefined) throw new TsbuildError('NOT_FOUND', `${where}: no image tagged ${tag} in its index.json`);
    chosen = listed;
  }
  for (let depth = 0; depth < 4; depth++) {
    await copyBlob(store, source.dir, chosen, where, signal);
    const bytes = await store.blobs.readBytes(chosen.digest, { maxSize: MAX_DOCUMENT, ...(signal !== undefined ? { signal } : {}) });
    if (!looksLikeIndex(JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: unknown })) {
      const manifest = parseManifest(bytes);
      for (const blob of [manifest.config, ...manifest.layers]) await copyBlob(store, source.dir, blob, where, signal);
      return chosen.digest;
    }
    // The registry pull's choice of manifest: variants matched, attestation manifests never taken.
    chosen = selectPlatform(parseIndex(bytes), platform, `${where} index ${chosen.digest}`);
  }
  throw new TsbuildError('IMAGE', `${where}: indexes nested too deep`);
}

async function readDocument(path: string, where: string): Promise<Buffer> {
  const bytes = await readFile(path).catch((err: unknown) => {
    throw new TsbuildError('NOT_FOUND', `${where}: cannot read ${path}`, { cause: err });
  });
  if (bytes.length > MAX_DOCUMENT) throw new TsbuildError('IMAGE', `${where}: ${path} is over ${MAX_DOCUMENT} bytes`);
  return bytes;
}

/** One blob into the store unless there already, verified against its digest (and size when known). */
async function copyBlob(store: Store, dir: string, desc: { digest: Digest; size?: number }, where: string, signal?: AbortSignal): Promise<void> {
  if (await store.blobs.has(desc.digest)) return;
  const opts = { expected: desc.digest, ...(desc.size !== undefined ? { expectedSize: desc.size } : {}), ...(signal !== undefined ? { signal } : {}) };
  await store.blobs.put(createReadStream(join(dir, 'blobs', 'sha256', digestHex(desc.digest))), opts).catch((err: unknown) => {
    throw new TsbuildError('IMAGE', `${where}: blob ${desc.digest}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
}
