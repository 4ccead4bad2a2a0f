/**
 * Per-layer file changes of an image and the bytes it wastes: files a later layer overwrites or
 * deletes still occupy space in the layer that added them. Each layer tar is read as a stream
 * (only entry metadata is kept: one small record per path of the image).
 */
import type { Digest } from '../image/digest.js';
import type { ImageConfig, Manifest } from '../image/types.js';
import type { Store } from '../store/types.js';
import { autoDecompress } from './codec.js';
import { cleanComponents } from './rootpath.js';
import { readTar } from './tar/reader.js';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './tarball.js';

export interface FileChange {
  path: string;
  /** Bytes in this layer (0 for directories, links, devices). */
  size: number;
}

export interface LayerAnalysis {
  index: number;
  digest: Digest;
  diffId: Digest | undefined;
  size: number;
  createdBy: string;
  added: FileChange[];
  /** Paths that existed below; `size` is this layer's copy. */
  modified: FileChange[];
  /** Paths removed by a whiteout; `size` is what the lower layers held there. */
  deleted: FileChange[];
  /** Bytes of this layer's files that a later layer overwrites or deletes. */
  wasted: number;
}

export interface ImageAnalysis {
  layers: LayerAnalysis[];
  totalSize: number;
  totalWasted: number;
}

interface Live {
  layer: number;
  size: number;
  dir: boolean;
}

/** created_by of each non-empty history entry, in layer order. */
function layerHistory(config: ImageConfig, count: number): string[] {
  const out = (config.history ?? []).filter((h) => h.empty_layer !== true).map((h) => h.created_by ?? '');
  return Array.from({ length: count }, (_, i) => out[i] ?? '');
}

export async function analyzeImage(store: Store, manifestDigest: Digest, options: { signal?: AbortSignal } = {}): Promise<ImageAnalysis> {
  const { signal } = options;
  const opts = signal ? { signal } : {};
  const manifest = await store.blobs.readJson<Manifest>(manifestDigest, { ...opts, maxSize: 4 << 20 });
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest, { ...opts, maxSize: 8 << 20 });
  const history = layerHistory(config, manifest.layers.length);
  const live = new Map<string, Live>();
  const layers: LayerAnalysis[] = manifest.layers.map((l, index) => ({
    index, digest: l.digest, diffId: config.rootfs.diff_ids[index], size: l.size, createdBy: history[index] ?? '',
    added: [], modified: [], deleted: [], wasted: 0,
  }));

  /** Removes `path` and everything beneath it; returns the bytes it held, charging each owner. */
  const remove = (path: string, keepChildrenOf?: number): { bytes: number; count: number } => {
    let bytes = 0;
    let count = 0;
    const prefix = path === '' ? '' : `${path}/`;
    for (const [p, info] of live) {
      if (p !== path && !p.startsWith(prefix)) continue;
      if (keepChildrenOf !== undefined && info.layer === keepChildrenOf) continue;
      bytes += info.size;
      const owner = layers[info.layer];
      if (owner !== undefined) owner.wasted += info.size;
      live.delete(p);
      count++;
    }
    return { bytes, count };
  };

  for (const layer of layers) {
    const blob = (await store.blobs.open(layer.digest, opts)) as AsyncIterable<Uint8Array>;
    const { stream } = await autoDecompress(blob, signal);
    for await (const { header, body } of readTar(stream)) {
      signal?.throwIfAborted();
      for await (const _ of body) void _; // sizes come from the header; data is skipped
      const parts = cleanComponents(header.name);
      const base = parts.pop();
      if (base === undefined) continue;
      const parent = parts.join('/');
      if (base === OPAQUE_WHITEOUT) {
        const { bytes, count } = remove(parent, layer.index);
        if (count > 0) layer.deleted.push({ path: `${parent}/`, size: bytes });
        live.set(parent, live.get(parent) ?? { layer: layer.index, size: 0, dir: true });
        continue;
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        const path = [...parts, base.slice(WHITEOUT_PREFIX.length)].join('/');
        if (live.has(path)) layer.deleted.push({ path, size: remove(path).bytes });
        continue;
      }
      const path = [...parts, base].join('/');
      const dir = header.type === 'dir';
      const previous = live.get(path);
      const change = { path, size: header.size };
      if (previous === undefined) layer.added.push(change);
      else if (!dir || !previous.dir) {
        layer.modified.push(change);
        // A non-directory over a directory hides everything below it as well.
        remove(path);
      }
      live.set(path, { layer: layer.index, size: header.size, dir });
    }
  }
  return {
    layers,
    totalSize: layers.reduce((n, l) => n + l.size, 0),
    totalWasted: layers.reduce((n, l) => n + l.wasted, 0),
  };
}
