/**
 * Build cache entries (`cache/entries/<key>.json`), the context stat memo (`cache/memo/<context
 * hash>.json`, one per context root; `cache/memo.json` unscoped)
 * and the compression cache (`cache/compressed/<diffID hex>.<format>.json`). Values are small
 * JSON files written atomically (the memo: a line file, memo.ts); the builder defines what `data` means.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { digestHex, isDigest, type Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { writeAtomic } from '../util/fs.js';
import { MemoFile } from './memo.js';
import { rethrowNoSpace } from './nospace.js';
import type { CacheEntry, CacheIndex, CompressionCache, CompressionFormat, ContentMemo } from './types.js';

const KEY_RE = /^[a-f0-9]{16,128}$/;

/**
 * Read synchronously: cache entries are small, and a thread-pool round trip per step's lookup cost
 * more than the read. Still a promise (a microtask), so failures stay rejections.
 */
function readJsonFile<T>(path: string): Promise<T | undefined> {
  return Promise.resolve().then(() => readJsonFileNow<T>(path));
}

function readJsonFileNow<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // a torn or foreign file is a cache miss, never a build failure
  }
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
}

function checkKey(key: string): string {
  if (!KEY_RE.test(key)) throw new TsbuildError('INTERNAL', `cache key must be 16-128 lowercase hex, got ${JSON.stringify(key)}`);
  return key;
}

/**
 * Write-then-rename without fsync, for files that are only hints (the memo, COPY reuse records):
 * a crash may lose or tear one, which costs a re-hash or a full copy, never a wrong result. An
 * fsync here would wait for every dirty page of the layer just written.
 */
export async function writeCacheFile(path: string, data: string, tmpDir: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  await writeAtomic(path, data, { tmpDir, durable: false });
}

/**
 * Keeps the `keep` most recently written files of a hint directory: memo files are per context
 * root and COPY records per step lineage, so CI checkouts in fresh paths would otherwise pile up.
 */
export async function trimOldest(dir: string, keep: number): Promise<void> {
  const names = await listNames(dir);
  if (names.length <= keep) return;
  const dated: { path: string; mtimeMs: number }[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (st !== undefined) dated.push({ path, mtimeMs: st.mtimeMs });
  }
  dated.sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const { path } of dated.slice(keep)) await rm(path, { force: true });
}

/** How many per-context memo files and COPY reuse records a store keeps. */
export const HINT_FILES_KEPT = 64;

function createMemo(file: string, tmpDir: string, scoped: boolean): ContentMemo {
  return new MemoFile(file, async (text) => {
    await writeCacheFile(file, text, tmpDir).catch(rethrowNoSpace(dirname(dirname(file)), 'writing the context memo'));
    if (scoped) await trimOldest(dirname(file), HINT_FILES_KEPT);
  });
}

export function createCacheIndex(root: string, tmpDir: string): CacheIndex {
  const dir = join(root, 'cache', 'entries');
  const file = (key: string): string => join(dir, `${checkKey(key)}.json`);
  const memos = new Map<string, ContentMemo>();
  return {
    memo: createMemo(join(root, 'cache', 'memo.json'), tmpDir, false),
    memoFor(scope) {
      // One file per context root: a 50-file build never loads a 30,000-file context's memo.
      const name = createHash('sha256').update(scope).digest('hex').slice(0, 32);
      let memo = memos.get(name);
      if (memo === undefined) memos.set(name, (memo = createMemo(join(root, 'cache', 'memo', `${name}.json`), tmpDir, true)));
      return memo;
    },
    async get(key) {
      return readJsonFile<CacheEntry>(file(key));
    },
    async put(key, entry, options = {}) {
      mkdirSync(dir, { recursive: true });
      await writeAtomic(file(key), JSON.stringify(entry), options.signal ? { tmpDir, signal: options.signal } : { tmpDir }).catch(
        rethrowNoSpace(root, 'writing a cache entry'),
      );
    },
    async delete(key) {
      await rm(file(key), { force: true });
    },
    async list() {
      const out: { key: string; entry: CacheEntry }[] = [];
      for (const name of await listNames(dir)) {
        const key = name.replace(/\.json$/, '');
        if (!KEY_RE.test(key)) continue;
        const entry = await readJsonFile<CacheEntry>(join(dir, name));
        if (entry !== undefined) out.push({ key, entry });
      }
      return out;
    },
  };
}

export function createCompressionCache(root: string, tmpDir: string): CompressionCache {
  const dir = join(root, 'cache', 'compressed');
  const file = (d: Digest, f: CompressionFormat): string => join(dir, `${digestHex(d)}.${f}.json`);
  return {
    async get(d, f) {
      return readJsonFile<Descriptor>(file(d, f));
    },
    async set(d, f, descriptor) {
      mkdirSync(dir, { recursive: true });
      await writeAtomic(file(d, f), JSON.stringify(descriptor), { tmpDir });
    },
    async delete(d, f) {
      await rm(file(d, f), { force: true });
    },
    async list() {
      const out: { diffId: Digest; format: CompressionFormat; descriptor: Descriptor }[] = [];
      for (const name of await listNames(dir)) {
        const m = /^([a-f0-9]{64})\.(gzip|zstd)\.json$/.exec(name);
        if (!m?.[1] || !m[2]) continue;
        const diffId = `sha256:${m[1]}`;
        const descriptor = await readJsonFile<Descriptor>(join(dir, name));
        if (isDigest(diffId) && descriptor !== undefined) out.push({ diffId, format: m[2] as CompressionFormat, descriptor });
      }
      return out;
    },
  };
}
