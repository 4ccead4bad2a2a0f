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
 * The record (`cache/copy/<lineage>.json`: a `tsbuild-copy 1 <diffID>` line, `path\tidentity`
 * lines in staging order, `end <count>`) is a hint: torn, stale or missing, the step just copies.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../image/digest.js';
import { HINT_FILES_KEPT, trimOldest, writeCacheFile } from '../store/cache.js';
import type { Store } from '../store/types.js';
import { errnoCode } from '../util/errors.js';
import { LineCursor } from '../util/line-cursor.js';
import type { CacheInputs } from './cachekey.js';

const HEADER = 'tsbuild-copy 1 ';
const NL = 10;
const UNSAFE = /[\t\n]/;

/**
 * The previous snapshot of a lineage and the source identity each of its files was staged from:
 * `target\tidentity` lines in staging order, kept as the one string read. Staging walks in the
 * same order, so a lookup is a comparison at a cursor; 30,000 files cost no Map of 60,000 strings
 * while the layer is committed.
 */
export class CopyReuse {
  readonly dir: string;
  /** The record as read: its lines are text[begin, end). */
  readonly text: string;
  readonly #lines: LineCursor;

  constructor(dir: string, text: string, begin = 0, end = text.length) {
    this.dir = dir;
    this.text = text;
    this.#lines = new LineCursor(text, begin, end);
  }

  /** Offset of `target`'s line when it was staged from a source of this identity, else undefined. */
  find(target: string, identity: string): number | undefined {
    if (UNSAFE.test(target)) return undefined;
    const at = this.#lines.find(target);
    return at !== undefined && this.#lines.take(at, target) === identity ? at : undefined;
  }
}

/**
 * What one COPY staged from the context (target -> source identity): the record the next build
 * reuses. Files linked from the previous snapshot are kept as offsets of its record's lines, so
 * an unchanged context adds a number per file, not two strings.
 */
export class StagedFiles {
  readonly #previous: string;
  readonly #parts: (number | string | { forget: string })[] = [];
  #forgets = 0;
  #size = 0;

  constructor(previous?: CopyReuse) {
    this.#previous = previous?.text ?? '';
  }

  get size(): number {
    return this.#size;
  }

  /** `at`: the previous record's line for this very target and identity (see CopyReuse.find). */
  add(target: string, identity: string, at?: number): void {
    if (at !== undefined) this.#parts.push(at);
    else if (!UNSAFE.test(target) && !UNSAFE.test(identity)) this.#parts.push(`${target}\t${identity}\n`);
    else return;
    this.#size++;
  }

  /** A later source replaced what was staged at `target`. */
  forget(target: string): void {
    this.#parts.push({ forget: target });
    this.#forgets++;
  }

  /** The record's lines: runs of the previous record's lines copied as one slice each. */
  lines(): { body: string; count: number } {
    const t = this.#previous;
    const lineAt = (at: number): [number, number] => [at, t.indexOf('\n', at) + 1];
    if (this.#forgets > 0) {
      // Rare (overlapping sources): last writer wins per target.
      const byTarget = new Map<string, string>();
      for (const p of this.#parts) {
        if (typeof p === 'object') byTarget.delete(p.forget);
        else {
          const line = typeof p === 'string' ? p : t.slice(...lineAt(p));
          byTarget.set(line.slice(0, line.indexOf('\t')), line);
        }
      }
      return { body: [...byTarget.values()].join(''), count: byTarget.size };
    }
    const out: string[] = [];
    let runStart = 0;
    let runEnd = -1;
    for (const p of this.#parts) {
      if (typeof p === 'number' && p === runEnd) {
        runEnd = lineAt(p)[1];
        continue;
      }
      if (runEnd > runStart) out.push(t.slice(runStart, runEnd));
      runEnd = -1;
      if (typeof p === 'number') [runStart, runEnd] = lineAt(p);
      else if (typeof p === 'string') out.push(p);
    }
    if (runEnd > runStart) out.push(t.slice(runStart, runEnd));
    return { body: out.join(''), count: this.#size };
  }
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
  const record = parseRecord(text);
  if (record === undefined || !(await store.snapshots.has(record.diffId))) return undefined;
  return new CopyReuse(store.snapshots.path(record.diffId), record.text, record.begin, record.end);
}

/** `tsbuild-copy 1 <diffID>`, the lines, `end <count>`; anything torn or foreign is no record. */
function parseRecord(text: string): { diffId: Digest; text: string; begin: number; end: number } | undefined {
  if (text.startsWith('{')) return fromJson(text);
  const headerEnd = text.indexOf('\n');
  if (!text.startsWith(HEADER) || headerEnd < 0 || text.charCodeAt(text.length - 1) !== NL) return undefined;
  const diffId = text.slice(HEADER.length, headerEnd);
  const trailer = text.lastIndexOf('\nend ', text.length - 2) + 1;
  if (!isDigest(diffId) || trailer <= headerEnd) return undefined;
  let lines = 0;
  for (let at = text.indexOf('\n', headerEnd + 1); at >= 0 && at < trailer; at = text.indexOf('\n', at + 1)) lines++;
  return lines === Number(text.slice(trailer + 4, -1)) ? { diffId, text, begin: headerEnd + 1, end: trailer } : undefined;
}

/** The JSON record earlier versions wrote. */
function fromJson(text: string): { diffId: Digest; text: string; begin: number; end: number } | undefined {
  let record: { diffId?: unknown; files?: unknown };
  try {
    record = JSON.parse(text) as typeof record;
  } catch {
    return undefined;
  }
  if (typeof record.diffId !== 'string' || !isDigest(record.diffId) || typeof record.files !== 'object' || record.files === null) return undefined;
  const lines: string[] = [];
  for (const [target, identity] of Object.entries(record.files)) {
    if (typeof identity === 'string' && !UNSAFE.test(target) && !UNSAFE.test(identity)) lines.push(`${target}\t${identity}\n`);
  }
  const body = lines.join('');
  return { diffId: record.diffId, text: body, begin: 0, end: body.length };
}

/** Unsynced (see writeCacheFile): losing the record costs one full copy, never a wrong layer. */
export async function saveReuse(store: Store, lineage: string, diffId: Digest, staged: StagedFiles): Promise<void> {
  const { body, count } = staged.lines();
  await writeCacheFile(recordPath(store, lineage), `${HEADER}${diffId}\n${body}end ${count}\n`, store.tmpDir);
  await trimOldest(join(store.root, 'cache', 'copy'), HINT_FILES_KEPT);
}
