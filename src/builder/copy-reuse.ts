/**
 * Incremental COPY. When a context COPY misses because some files changed, the previous build of
 * the same step (same parent, instruction, options: its "lineage") left a snapshot. A file whose
 * source still has the stat identity it had when that snapshot was staged (the memo's
 * dev:ino:size:mtime:ctime) is hard-linked from that snapshot instead of copied: same bytes, same
 * mode, owner, mtime and xattrs (changing any of them changes ctime), no data written.
 *
 * Sharing inodes between snapshots is safe because nothing writes through a snapshot (overlay
 * copies up, bind mounts come from the context, extraction fills fresh dirs) and the tar writer
 * only pairs hard links within the one tree it walks.
 *
 * The record (`cache/copy/<lineage>.json`: diffID + staged path -> source identity) is a hint:
 * torn, stale or missing, the step just copies.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../image/digest.js';
import { HINT_FILES_KEPT, trimOldest, writeCacheFile } from '../store/cache.js';
import type { Store } from '../store/types.js';
import { errnoCode } from '../util/errors.js';
import type { CacheInputs } from './cachekey.js';

/** The previous snapshot of a lineage and the source identity of each file staged in it. */
export interface CopyReuse {
  dir: string;
  files: Map<string, string>;
}

interface RecordFile {
  diffId: string;
  files: Record<string, string>;
}

/** Everything that shapes the staged tree except the sources' content. */
export function lineageOf(inputs: CacheInputs, sourceDateEpoch: number | undefined): string {
  const { parent, platform, instruction, env, extra } = inputs;
  const text = JSON.stringify({ parent, platform, instruction, env, extra: extra ?? {}, sde: sourceDateEpoch ?? null });
  return createHash('sha256').update(text).digest('hex');
}

function recordPath(store: Store, lineage: string): string {
  return join(store.root, 'cache', 'copy', `${lineage}.json`);
}

export async function loadReuse(store: Store, lineage: string): Promise<CopyReuse | undefined> {
  let text: string;
  try {
    text = await readFile(recordPath(store, lineage), 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  let record: RecordFile;
  try {
    record = JSON.parse(text) as RecordFile;
  } catch {
    return undefined;
  }
  if (!isDigest(record.diffId) || typeof record.files !== 'object' || !(await store.snapshots.has(record.diffId))) return undefined;
  return { dir: store.snapshots.path(record.diffId), files: new Map(Object.entries(record.files)) };
}

/** Unsynced (see writeCacheFile): losing the record costs one full copy, never a wrong layer. */
export async function saveReuse(store: Store, lineage: string, diffId: Digest, files: Map<string, string>): Promise<void> {
  await writeCacheFile(recordPath(store, lineage), JSON.stringify({ diffId, files: Object.fromEntries(files) }), store.tmpDir);
  await trimOldest(join(store.root, 'cache', 'copy'), HINT_FILES_KEPT);
}
