/** Loads an oci-archive or docker-archive tar into the store (blobs verified on the way in). */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { digestFromHash, isDigest, type Digest } from '../image/digest.js';
import { buildManifest, encodeManifest, parseConfig, parseIndex } from '../image/manifest.js';
import { MediaType } from '../image/mediatypes.js';
import type { Descriptor } from '../image/types.js';
import { REF_NAME } from '../store/tags.js';
import type { Store } from '../store/types.js';
import { TsbuildError } from '../util/errors.js';
import { autoDecompress, detectCompression } from './codec.js';
import { cleanComponents } from './rootpath.js';
import { readTar } from './tar/reader.js';

const METADATA = new Set(['index.json', 'oci-layout', 'manifest.json', 'repositories']);
const MAX_METADATA = 16 << 20;

interface Loaded {
  files: Map<string, { digest: Digest; size: number }>;
  /** Blobs this load put into the store that were not there before. */
  created: Set<Digest>;
  links: Map<string, string>;
  meta: Map<string, Buffer>;
}

async function load(store: Store, source: AsyncIterable<Uint8Array>, created: Set<Digest>, signal?: AbortSignal): Promise<Loaded> {
  const files = new Map<string, { digest: Digest; size: number }>();
  const links = new Map<string, string>();
  const meta = new Map<string, Buffer>();
  const { stream } = await autoDecompress(source, signal);
  for await (const { header, body } of readTar(stream)) {
    signal?.throwIfAborted();
    const name = cleanComponents(header.name).join('/');
    if (header.type === 'symlink') links.set(name, cleanComponents(posix.join(posix.dirname(name), header.linkname)).join('/'));
    if (header.type === 'link') links.set(name, cleanComponents(header.linkname).join('/'));
    if (header.type !== 'file') continue;
    if (METADATA.has(name)) {
      if (header.size > MAX_METADATA) throw new TsbuildError('IMAGE', `${name} in archive is too large`);
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c);
      meta.set(name, Buffer.concat(chunks));
      continue;
    }
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    const expected = m?.[1] !== undefined ? `sha256:${m[1]}` : undefined;
    const { digest, size, created: isNew } = await store.blobs.put(body, {
      expectedSize: header.size,
      ...(expected !== undefined && isDigest(expected) ? { expected } : {}),
      ...(signal ? { signal } : {}),
    });
    if (isNew) created.add(digest);
    files.set(name, { digest, size });
  }
  return { files, created, links, meta };
}

function lookup(loaded: Loaded, name: string): { digest: Digest; size: number } {
  let cur = cleanComponents(name).join('/');
  for (let hops = 0; hops < 16; hops++) {
    const file = loaded.files.get(cur);
    if (file) return file;
    const next = loaded.links.get(cur);
    if (next === undefined) break;
    cur = next;
  }
  throw new TsbuildError('IMAGE', `archive lacks ${name}`);
}

async function headOf(store: Store, digest: Digest): Promise<Buffer> {
  const fh = await open(store.blobs.path(digest), 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

interface DockerEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * Loads either archive kind. Returns the images found with their names as written in the
 * archive (not normalised and not tagged: the caller normalises names and sets tags).
 */
export async function importArchive(store: Store, source: NodeJS.ReadableStream | AsyncIterable<Uint8Array>, options: { signal?: AbortSignal } = {}): Promise<{ name?: string; manifest: Digest }[]> {
  // Every file of the archive is stored while it streams past (manifest.json may come last), so
  // whatever no image turns out to use, and everything on failure, is taken out again: a load
  // leaves the store as it was but for the images it loaded.
  const created = new Set<Digest>();
  const kept = new Set<Digest>();
  try {
    const images = await importImages(store, source as AsyncIterable<Uint8Array>, created, kept, options.signal);
    for (const d of created) if (!kept.has(d)) await store.blobs.delete(d);
    return images;
  } catch (err) {
    for (const d of created) await store.blobs.delete(d).catch(() => undefined);
    throw err;
  }
}

/** A compressed blob's diffID, by decompressing it: an archive's claim is not trusted. */
async function diffIdOfBlob(store: Store, digest: Digest, signal?: AbortSignal): Promise<Digest> {
  const { stream } = await autoDecompress((await store.blobs.open(digest, signal ? { signal } : {})) as AsyncIterable<Uint8Array>, signal);
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return digestFromHash(hash);
}

async function importImages(store: Store, source: AsyncIterable<Uint8Array>, created: Set<Digest>, kept: Set<Digest>, signal?: AbortSignal): Promise<{ name?: string; manifest: Digest }[]> {
  const loaded = await load(store, source, created, signal);
  const indexJson = loaded.meta.get('index.json');
  const dockerJson = loaded.meta.get('manifest.json');
  if (dockerJson !== undefined) {
    const entries = JSON.parse(dockerJson.toString('utf8')) as DockerEntry[];
    const out: { name?: string; manifest: Digest }[] = [];
    for (const e of entries) {
      const cfg = lookup(loaded, e.Config);
      kept.add(cfg.digest);
      const config = parseConfig(await store.blobs.readBytes(cfg.digest, signal ? { signal } : {}));
      if (config.rootfs.diff_ids.length !== e.Layers.length) throw new TsbuildError('IMAGE', 'docker archive: layer count differs from config diff_ids');
      const layers: Descriptor[] = [];
      for (const [i, name] of e.Layers.entries()) {
        const blob = lookup(loaded, name);
        kept.add(blob.digest);
        const format = detectCompression(await headOf(store, blob.digest));
        const diffId = config.rootfs.diff_ids[i] as Digest;
        if (format === 'none') {
          if (blob.digest !== diffId) throw new TsbuildError('IMAGE', `docker archive: layer ${name} does not match diff_id ${diffId}`);
          layers.push({ mediaType: MediaType.OciLayer, ...blob });
        } else {
          // Recorded as "the compressed form of diffID" for every image with that layer, so checked:
          // a false claim would have another image's export or push send this archive's bytes.
          const actual = await diffIdOfBlob(store, blob.digest, signal);
          if (actual !== diffId) throw new TsbuildError('IMAGE', `docker archive: layer ${name} unpacks to ${actual}, but the config says ${diffId}`);
          const desc = { mediaType: format === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerZstd, ...blob };
          await store.compressed.set(diffId, format, desc);
          layers.push(desc);
        }
      }
      const encoded = encodeManifest(buildManifest({ mediaType: MediaType.OciConfig, ...cfg }, layers));
      const put = await store.blobs.putBytes(encoded.bytes, signal ? { signal } : {});
      if (put.created) created.add(put.digest);
      kept.add(put.digest);
      const names = e.RepoTags ?? [];
      if (names.length === 0) out.push({ manifest: encoded.descriptor.digest });
      for (const name of names) out.push({ name, manifest: encoded.descriptor.digest });
    }
    return out;
  }
  if (indexJson !== undefined) {
    const index = parseIndex(indexJson);
    // An OCI layout's blobs are its content; other files in the archive are not.
    for (const [name, file] of loaded.files) if (name.startsWith('blobs/sha256/')) kept.add(file.digest);
    return index.manifests.map((d) => {
      if (!loaded.files.has(`blobs/sha256/${d.digest.slice(7)}`)) throw new TsbuildError('IMAGE', `oci archive lacks manifest ${d.digest}`);
      const name = d.annotations?.[REF_NAME];
      return name === undefined ? { manifest: d.digest } : { name, manifest: d.digest };
    });
  }
  throw new TsbuildError('IMAGE', 'not an image archive: neither index.json nor manifest.json found');
}
