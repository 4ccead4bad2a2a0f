/**
 * Garbage collection and verification as named steps (cacache style). Roots: every descriptor
 * in index.json (tagged or not), the build cache's refs (unless dropped), and the compressed
 * variants of live layers. Prune holds the GC lease lock exclusively, so it runs only while no
 * build/pull holds a lease (Store.withLease) and nothing they resolved can vanish under them.
 * Blobs newer than the grace period survive too: a writer not using a lease (library callers)
 * still keeps its freshly written, not yet tagged blobs.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/mediatypes.js';
import type { ImageConfig, Index, Manifest } from '../image/types.js';
import { withFileLock } from './lock.js';
import { readIndex } from './tags.js';
import { sweepTmp } from './tmp.js';
import type { Store } from './types.js';

type Doc = Partial<Manifest> & Partial<Index> & Partial<ImageConfig>;

async function liveSet(store: Store, keepCache: boolean, dryRun: boolean, signal?: AbortSignal): Promise<{ blobs: Set<Digest>; diffs: Set<Digest> }> {
  const blobs = new Set<Digest>();
  const diffs = new Set<Digest>();
  const opts = signal ? { signal } : {};
  async function walk(d: Digest, mediaType: string | undefined): Promise<void> {
    if (blobs.has(d)) return;
    blobs.add(d);
    if (!(await store.blobs.has(d))) return;
    if (mediaType !== undefined && !mediaType.includes('manifest') && !isIndexMediaType(mediaType)) return;
    let doc: Doc;
    try {
      doc = await store.blobs.readJson<Doc>(d, { ...opts, maxSize: 4 << 20 });
    } catch {
      return; // a layer or foreign blob, not JSON
    }
    if (Array.isArray(doc.manifests)) for (const m of doc.manifests) await walk(m.digest, m.mediaType);
    if (doc.config && Array.isArray(doc.layers)) {
      await walk(doc.config.digest, doc.config.mediaType);
      for (const l of doc.layers) blobs.add(l.digest);
      try {
        const config = await store.blobs.readJson<ImageConfig>(doc.config.digest, opts);
        for (const id of config.rootfs?.diff_ids ?? []) diffs.add(id);
      } catch {
        // config missing or corrupt: its layers' snapshots are not kept alive through it
      }
    }
  }
  for (const desc of (await readIndex(store.root)).manifests) await walk(desc.digest, desc.mediaType);
  for (const { key, entry } of await store.cache.list()) {
    if (!keepCache) {
      if (!dryRun) await store.cache.delete(key);
      continue;
    }
    for (const ref of entry.refs) {
      await walk(ref, undefined);
      diffs.add(ref);
    }
  }
  for (const d of blobs) diffs.add(d); // built layers: blob digest = diffID
  for (const { diffId, format, descriptor } of await store.compressed.list()) {
    if (diffs.has(diffId)) blobs.add(descriptor.digest);
    else if (!blobs.has(descriptor.digest) && !dryRun) await store.compressed.delete(diffId, format);
  }
  return { blobs, diffs };
}

export interface PruneOptions {
  signal?: AbortSignal;
  /** Keep build cache entries (and what they reference). Default false: prune drops the cache. */
  keepCache?: boolean;
  dryRun?: boolean;
  /** Blobs younger than this are kept (default 10 minutes). */
  gracePeriodMs?: number;
}

export async function prune(store: Store, options: PruneOptions = {}): Promise<{ removedBlobs: number; removedSnapshots: number; bytesFreed: number }> {
  const { signal, dryRun = false } = options;
  const grace = options.gracePeriodMs ?? 10 * 60_000;
  const opts = signal ? { signal } : {};
  // Exclusive GC lease first (waits for running builds/pulls to finish), then the store lock:
  // the same order builds use, so the two never deadlock.
  return withFileLock(join(store.root, 'gc.lock'), () => store.withLock(async () => {
    const live = await liveSet(store, options.keepCache ?? false, dryRun, signal);
    let removedBlobs = 0;
    let bytesFreed = 0;
    const now = Date.now();
    for await (const d of store.blobs.list()) {
      signal?.throwIfAborted();
      if (live.blobs.has(d)) continue;
      const st = await stat(store.blobs.path(d)).catch(() => undefined);
      if (st === undefined || now - st.mtimeMs < grace) continue;
      if (!dryRun) await store.blobs.delete(d);
      removedBlobs++;
      bytesFreed += st.size;
    }
    let removedSnapshots = 0;
    for (const d of await store.snapshots.list()) {
      if (live.diffs.has(d)) continue;
      const st = await stat(store.snapshots.path(d)).catch(() => undefined);
      if (st !== undefined && now - st.mtimeMs < grace) continue;
      if (!dryRun) await store.snapshots.remove(d);
      removedSnapshots++;
    }
    if (!dryRun) await sweepTmp(store.root); // dead writers' staging debris
    return { removedBlobs, removedSnapshots, bytesFreed };
  }, opts), signal, 'exclusive');
}
export { verifyStore } from './verify.js';
