/**
 * Garbage collection and verification as named steps (cacache style). Roots: every descriptor
 * in index.json (tagged or not), the build cache's refs (unless dropped), and the compressed
 * variants of live layers. Blobs newer than the grace period survive, so a concurrent build's
 * freshly written (not yet tagged) blobs are never collected under it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestFromHash, type Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/mediatypes.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.js';
import { errnoCode, messageOf } from '../util/errors.js';
import { readIndex } from './tags.js';
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

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
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
  return store.withLock(async () => {
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
    // tmp debris of dead writers (names carry the writer's pid: util/fs tmpName).
    for (const name of await readdir(store.tmpDir).catch(() => [] as string[])) {
      const pid = Number(/-(\d+)-[0-9a-f]+$/.exec(name)?.[1]);
      if (Number.isInteger(pid) && !pidAlive(pid) && !dryRun) await rm(join(store.tmpDir, name), { recursive: true, force: true });
    }
    return { removedBlobs, removedSnapshots, bytesFreed };
  }, signal ? { signal } : {});
}

async function hashFile(path: string, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, signal ? { signal } : {}) as AsyncIterable<Buffer>) hash.update(chunk);
  return digestFromHash(hash);
}

/** Re-hashes every blob and checks that tags point at present blobs. */
export async function verifyStore(store: Store, options: { signal?: AbortSignal } = {}): Promise<{ ok: boolean; problems: string[] }> {
  const problems: string[] = [];
  for await (const d of store.blobs.list()) {
    options.signal?.throwIfAborted();
    try {
      const actual = await hashFile(store.blobs.path(d), options.signal);
      if (actual !== d) problems.push(`blob ${d} is corrupt (hashes to ${actual})`);
    } catch (err) {
      problems.push(`blob ${d}: ${messageOf(err)}`);
    }
  }
  const index = await readIndex(store.root).catch((err: unknown) => {
    problems.push(messageOf(err));
    return { manifests: [] as Descriptor[] };
  });
  for (const desc of index.manifests) {
    const size = await store.blobs.size(desc.digest);
    if (size === undefined) problems.push(`index.json references missing blob ${desc.digest}`);
    else if (size !== desc.size) problems.push(`index.json says ${desc.digest} is ${desc.size} bytes, blob is ${size}`);
  }
  return { ok: problems.length === 0, problems };
}
