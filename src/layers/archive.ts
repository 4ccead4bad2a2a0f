/**
 * Image archives: `oci-archive` (an OCI layout as a tar) and `docker-archive` (manifest.json +
 * repositories + <diffID>/layer.tar), export and import. In layers/ because export compresses
 * layers lazily (compressLayer) and both directions read and write the store.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex, type Digest } from '../image/digest.js';
import { buildManifest, encodeManifest, looksLikeIndex, parseConfig, parseIndex, parseManifest } from '../image/manifest.js';
import { layerCompression, MediaType } from '../image/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../image/types.js';
import { REF_NAME } from '../store/tags.js';
import type { Store } from '../store/types.js';
import { TsbuildError } from '../util/errors.js';
import { limit } from '../util/limit.js';
import { compressLayer } from './compress.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeader } from './tar/header.js';

export interface ArchiveRef {
  name: string;
  manifest: Digest;
}

type Part = { name: string; bytes: Buffer } | { name: string; blob: Digest; size: number };

function header(name: string, size: number, dir = false): TarHeader {
  return { name, type: dir ? 'dir' : 'file', mode: dir ? 0o755 : 0o644, uid: 0, gid: 0, size, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map() };
}

async function* tarParts(store: Store, parts: Part[], dirs: string[], signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const d of dirs) yield encodeHeader(header(d, 0, true));
  for (const part of parts) {
    signal?.throwIfAborted();
    if ('bytes' in part) {
      yield encodeHeader(header(part.name, part.bytes.length));
      yield part.bytes;
      yield paddingFor(part.bytes.length);
    } else {
      yield encodeHeader(header(part.name, part.size));
      yield* (await store.blobs.open(part.blob, signal ? { signal } : {})) as AsyncIterable<Buffer>;
      yield paddingFor(part.size);
    }
  }
  yield END_OF_ARCHIVE;
}

async function writeParts(store: Store, parts: Part[], dirs: string[], out: NodeJS.WritableStream, signal?: AbortSignal): Promise<void> {
  await pipeline(Readable.from(tarParts(store, parts, dirs, signal)), out, signal ? { signal } : {});
}

async function loadManifest(store: Store, digest: Digest, signal?: AbortSignal): Promise<Manifest> {
  return parseManifest(await store.blobs.readBytes(digest, signal ? { signal } : {}));
}

/** Compresses uncompressed layers to `format`; returns the (possibly new, stored) manifest descriptor. */
async function recompressed(store: Store, digest: Digest, format: 'gzip' | 'zstd' | 'none', signal?: AbortSignal): Promise<Descriptor> {
  const bytes = await store.blobs.readBytes(digest, signal ? { signal } : {});
  const manifest = parseManifest(bytes);
  const mediaType = manifest.mediaType ?? MediaType.OciManifest;
  if (format === 'none' || !manifest.layers.some((l) => layerCompression(l.mediaType) === 'none')) {
    return { mediaType, digest, size: bytes.length };
  }
  const run = limit(2);
  const layers = await Promise.all(
    manifest.layers.map((l) =>
      layerCompression(l.mediaType) === 'none' ? run(() => compressLayer(store, l.digest, signal ? { format, signal } : { format })) : Promise.resolve(l),
    ),
  );
  const encoded = encodeManifest(buildManifest(manifest.config, layers, manifest.annotations ? { annotations: manifest.annotations } : {}));
  await store.blobs.putBytes(encoded.bytes, signal ? { signal } : {});
  return encoded.descriptor;
}

/** Collects a manifest (or index) and everything it references as blob parts. */
async function collect(store: Store, desc: Descriptor, into: Map<Digest, number>, signal?: AbortSignal): Promise<void> {
  if (into.has(desc.digest)) return;
  into.set(desc.digest, desc.size);
  const doc = await store.blobs.readJson<{ mediaType?: string; manifests?: unknown }>(desc.digest, signal ? { signal } : {});
  if (looksLikeIndex(doc)) {
    for (const m of parseIndex(JSON.stringify(doc)).manifests) await collect(store, m, into, signal);
    return;
  }
  const manifest = await loadManifest(store, desc.digest, signal);
  into.set(manifest.config.digest, manifest.config.size);
  for (const l of manifest.layers) {
    if (!(await store.blobs.has(l.digest))) throw new TsbuildError('NOT_FOUND', `layer ${l.digest} is not in the store`);
    into.set(l.digest, l.size);
  }
}

export async function exportOciArchive(store: Store, refs: ArchiveRef[], out: NodeJS.WritableStream, options: { compression: 'gzip' | 'zstd' | 'none'; signal?: AbortSignal }): Promise<void> {
  const { signal } = options;
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  const blobs = new Map<Digest, number>();
  for (const ref of refs) {
    const doc = await store.blobs.readJson<{ mediaType?: string; manifests?: unknown }>(ref.manifest, signal ? { signal } : {});
    const desc = looksLikeIndex(doc)
      ? { mediaType: doc.mediaType ?? MediaType.OciIndex, digest: ref.manifest, size: (await store.blobs.size(ref.manifest)) ?? 0 }
      : await recompressed(store, ref.manifest, options.compression, signal);
    await collect(store, desc, blobs, signal);
    index.manifests.push({ ...desc, annotations: { [REF_NAME]: ref.name } });
  }
  const parts: Part[] = [
    { name: 'oci-layout', bytes: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { name: 'index.json', bytes: Buffer.from(JSON.stringify(index)) },
    ...[...blobs].map(([d, size]) => ({ name: `blobs/sha256/${digestHex(d)}`, blob: d, size })),
  ];
  await writeParts(store, parts, ['blobs', 'blobs/sha256'], out, signal);
}

function splitName(name: string): { repo: string; tag: string } | undefined {
  if (name.includes('@')) return undefined;
  const colon = name.lastIndexOf(':');
  if (colon <= name.lastIndexOf('/')) return { repo: name, tag: 'latest' };
  return { repo: name.slice(0, colon), tag: name.slice(colon + 1) };
}

export async function exportDockerArchive(store: Store, refs: ArchiveRef[], out: NodeJS.WritableStream, options: { signal?: AbortSignal } = {}): Promise<void> {
  const { signal } = options;
  const parts: Part[] = [];
  const dirs: string[] = [];
  const entries: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const added = new Set<string>();
  for (const ref of refs) {
    const manifest = await loadManifest(store, ref.manifest, signal);
    const config = parseConfig(await store.blobs.readBytes(manifest.config.digest, signal ? { signal } : {}));
    const configName = `${digestHex(manifest.config.digest)}.json`;
    if (!added.has(configName)) parts.push({ name: configName, blob: manifest.config.digest, size: manifest.config.size });
    added.add(configName);
    const layers: string[] = [];
    for (const diffId of config.rootfs.diff_ids) {
      // docker-archive layers are uncompressed tars named by diffID.
      const plain = await compressLayer(store, diffId, signal ? { format: 'none', signal } : { format: 'none' });
      const dir = digestHex(diffId);
      layers.push(`${dir}/layer.tar`);
      if (added.has(dir)) continue;
      added.add(dir);
      dirs.push(dir);
      parts.push({ name: `${dir}/layer.tar`, blob: plain.digest, size: plain.size });
    }
    entries.push({ Config: configName, RepoTags: [ref.name], Layers: layers });
    const split = splitName(ref.name);
    const top = config.rootfs.diff_ids.at(-1);
    if (split && top) (repositories[split.repo] ??= {})[split.tag] = digestHex(top);
  }
  parts.push({ name: 'manifest.json', bytes: Buffer.from(JSON.stringify(entries)) });
  parts.push({ name: 'repositories', bytes: Buffer.from(JSON.stringify(repositories)) });
  await writeParts(store, parts, dirs, out, signal);
}

export { importArchive } from './import.js';
