/** Loads an oci-archive or docker-archive tar into the store (blobs verified on the way in). */
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { isDigest, type Digest } from '../image/digest.js';
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
  links: Map<string, string>;
  meta: Map<string, Buffer>;
}

async function load(store: Store, source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<Loaded> {
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
    const put = await store.blobs.put(body, {
      expectedSize: header.size,
      ...(expected !== undefined && isDigest(expected) ? { expected } : {}),
      ...(signal ? { signal } : {}),
    });
    files.set(name, put);
  }
  return { files, links, meta };
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
  const { signal } = options;
  const loaded = await load(store, source as AsyncIterable<Uint8Array>, signal);
  const indexJson = loaded.meta.get('index.json');
  const dockerJson = loaded.meta.get('manifest.json');
  if (dockerJson !== undefined) {
    const entries = JSON.parse(dockerJson.toString('utf8')) as DockerEntry[];
    const out: { name?: string; manifest: Digest }[] = [];
    for (const e of entries) {
      const cfg = lookup(loaded, e.Config);
      const config = parseConfig(await store.blobs.readBytes(cfg.digest, signal ? { signal } : {}));
      if (config.rootfs.diff_ids.length !== e.Layers.length) throw new TsbuildError('IMAGE', 'docker archive: layer count differs from config diff_ids');
      const layers: Descriptor[] = [];
      for (const [i, name] of e.Layers.entries()) {
        const blob = lookup(loaded, name);
        const format = detectCompression(await headOf(store, blob.digest));
        const diffId = config.rootfs.diff_ids[i] as Digest;
        if (format === 'none') {
          if (blob.digest !== diffId) throw new TsbuildError('IMAGE', `docker archive: layer ${name} does not match diff_id ${diffId}`);
          layers.push({ mediaType: MediaType.OciLayer, ...blob });
        } else {
          const desc = { mediaType: format === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerZstd, ...blob };
          await store.compressed.set(diffId, format, desc);
          layers.push(desc);
        }
      }
      const encoded = encodeManifest(buildManifest({ mediaType: MediaType.OciConfig, ...cfg }, layers));
      await store.blobs.putBytes(encoded.bytes, signal ? { signal } : {});
      const names = e.RepoTags ?? [];
      if (names.length === 0) out.push({ manifest: encoded.descriptor.digest });
      for (const name of names) out.push({ name, manifest: encoded.descriptor.digest });
    }
    return out;
  }
  if (indexJson !== undefined) {
    const index = parseIndex(indexJson);
    return index.manifests.map((d) => {
      if (!loaded.files.has(`blobs/sha256/${d.digest.slice(7)}`)) throw new TsbuildError('IMAGE', `oci archive lacks manifest ${d.digest}`);
      const name = d.annotations?.[REF_NAME];
      return name === undefined ? { manifest: d.digest } : { name, manifest: d.digest };
    });
  }
  throw new TsbuildError('IMAGE', 'not an image archive: neither index.json nor manifest.json found');
}
