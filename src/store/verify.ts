/**
 * verifyStore: a read-only consistency check (run by `tsbuild prune --verify`, and after every
 * crash test). It reports what a crash or a bad disk could leave behind: corrupt blobs, an
 * unparsable index.json, tags whose manifest/config/layers are missing, snapshot dirs that do not
 * look claimed (no owner marker), cache entries pointing at missing blobs, and staging debris of
 * processes that are gone.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestFromHash, isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../image/types.js';
import { messageOf } from '../util/errors.js';
import { readIndex } from './tags.js';
import { deadTmpEntries } from './tmp.js';
import type { Store } from './types.js';

async function hashFile(path: string, signal?: AbortSignal): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, signal ? { signal } : {}) as AsyncIterable<Buffer>) hash.update(chunk);
  return digestFromHash(hash);
}

async function checkBlobs(store: Store, problems: string[], signal?: AbortSignal): Promise<Set<Digest>> {
  const good = new Set<Digest>();
  for await (const d of store.blobs.list()) {
    signal?.throwIfAborted();
    try {
      const actual = await hashFile(store.blobs.path(d), signal);
      if (actual === d) good.add(d);
      else problems.push(`blob ${d} is corrupt (hashes to ${actual})`);
    } catch (err) {
      problems.push(`blob ${d}: ${messageOf(err)}`);
    }
  }
  return good;
}

/** Walks a tagged descriptor down to its layers, reporting anything missing on the way. */
async function checkImage(store: Store, good: Set<Digest>, desc: Descriptor, name: string, problems: string[]): Promise<void> {
  const size = await store.blobs.size(desc.digest);
  if (size === undefined) return void problems.push(`${name}: index.json references missing blob ${desc.digest}`);
  if (size !== desc.size) return void problems.push(`${name}: index.json says ${desc.digest} is ${desc.size} bytes, blob is ${size}`);
  if (!good.has(desc.digest)) return; // already reported as corrupt
  let doc: Partial<Manifest> & Partial<Index>;
  try {
    doc = JSON.parse(await readFile(store.blobs.path(desc.digest), 'utf8')) as Partial<Manifest> & Partial<Index>;
  } catch (err) {
    return void problems.push(`${name}: manifest ${desc.digest} is not JSON: ${messageOf(err)}`);
  }
  if (isIndexMediaType(desc.mediaType) || Array.isArray(doc.manifests)) {
    // A multi-platform index may legitimately hold only the platform that was pulled.
    return;
  }
  for (const part of [doc.config, ...(doc.layers ?? [])]) {
    if (part === undefined || !isDigest(part.digest)) {
      problems.push(`${name}: manifest ${desc.digest} lacks a valid config or layer digest`);
      continue;
    }
    if (!(await store.blobs.has(part.digest))) problems.push(`${name}: manifest ${desc.digest} references missing blob ${part.digest}`);
  }
}

async function checkSnapshots(root: string, problems: string[]): Promise<void> {
  const dir = join(root, 'snapshots');
  const names = await readdir(dir).catch(() => [] as string[]);
  const set = new Set(names);
  for (const name of names) {
    if (name.endsWith('.id')) {
      const owner = (await readFile(join(dir, name), 'utf8').catch(() => '')).trim();
      if (!isDigest(owner) || !owner.slice(7).startsWith(name.slice(0, -3))) problems.push(`snapshot marker ${name} names ${JSON.stringify(owner)}`);
    } else if (/^[0-9a-f]{12}$/.test(name) && !set.has(`${name}.id`)) {
      problems.push(`snapshot ${name} has no owner marker (incomplete or debris)`);
    } else if (!/^[0-9a-f]{12}$/.test(name) && !/^[0-9a-f]{64}$/.test(name)) {
      problems.push(`unexpected entry in snapshots/: ${name}`);
    } else if (!(await stat(join(dir, name))).isDirectory()) {
      problems.push(`snapshot ${name} is not a directory`);
    }
  }
}

/** Re-hashes every blob and checks references, snapshots, cache entries and staging debris. */
export async function verifyStore(store: Store, options: { signal?: AbortSignal } = {}): Promise<{ ok: boolean; problems: string[] }> {
  const problems: string[] = [];
  const good = await checkBlobs(store, problems, options.signal);
  const index = await readIndex(store.root).catch((err: unknown) => {
    problems.push(messageOf(err));
    return { manifests: [] as Descriptor[] };
  });
  for (const desc of index.manifests) {
    const name = desc.annotations?.['org.opencontainers.image.ref.name'] ?? desc.digest;
    await checkImage(store, good, desc, name, problems);
  }
  await checkSnapshots(store.root, problems);
  for (const { key, entry } of await store.cache.list()) {
    for (const ref of Array.isArray(entry.refs) ? entry.refs : []) {
      if (!(await store.blobs.has(ref))) problems.push(`cache entry ${key.slice(0, 12)} references missing blob ${ref}`);
    }
  }
  for (const { path, pid } of await deadTmpEntries(store.root)) {
    problems.push(`leftover staging ${path} of ${pid === undefined ? 'an unknown writer' : `dead process ${pid}`}`);
  }
  return { ok: problems.length === 0, problems };
}
