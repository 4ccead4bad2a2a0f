/**
 * The context stat memo file: stat identity -> content digest, one `key\tdigest` line each,
 * written in the order the last build asked for them. A warm build walks the context in the same
 * order, so a lookup is a comparison at a cursor in the loaded text: no parse into 30,000 keys,
 * no hash table, nothing to collect. A lookup out of sequence (a file added, a different COPY)
 * scans for the line, and after a few such misses indexes the text once.
 *
 * `tsbuild-memo 1` header, `end <lines>` trailer: a torn or truncated file reads as empty (a
 * re-hash, never a wrong digest). The JSON object written by earlier versions is still read.
 */
import { open, stat } from 'node:fs/promises';
import { errnoCode } from '../util/errors.js';
import type { ContentMemo, Signal } from './types.js';

const HEADER = 'tsbuild-memo 1\n';
const TAB = 9;
/** Misses answered by scanning the text before it is indexed (each scan reads it all). */
const SCANS = 8;
const UNSAFE = /[\t\n]/;

export class MemoFile implements ContentMemo {
  readonly #file: string;
  readonly #persist: (text: string) => Promise<void>;
  /** Loaded `key\tvalue\n` lines (header and trailer stripped). */
  #text = '';
  /** Where the next lookup is expected: just after the previous hit. */
  #pos = 0;
  /** key -> offset of its line, built once lookups stop following the file's order. */
  #index: Map<string, number> | undefined;
  #scans = 0;
  /** The last key a lookup missed: `set` follows a miss, and need not look again. */
  #missed: string | undefined;
  readonly #dirty = new Map<string, string>();
  /** This build's lookups in order (line offsets of loaded entries, keys of new ones): the next file's order. */
  #used: (number | string)[] = [];
  /** Loaded lines whose key `set` gave another value. */
  #replaced = new Set<number>();
  /** The loaded file's inode, size and times: unchanged at flush, nothing needs merging. */
  #loadedAs: string | undefined;

  constructor(file: string, persist: (text: string) => Promise<void>) {
    this.#file = file;
    this.#persist = persist;
  }

  async load(options: Signal = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const { text, id } = await readWithId(this.#file);
    this.#reset(bodyOf(text), id);
  }

  get(key: string): string | undefined {
    const dirty = this.#dirty.get(key);
    if (dirty !== undefined) return dirty;
    const at = this.#find(key);
    if (at === undefined) {
      this.#missed = key;
      return undefined;
    }
    this.#used.push(at);
    const start = at + key.length + 1;
    const end = this.#text.indexOf('\n', start);
    this.#pos = end + 1;
    return this.#text.slice(start, end);
  }

  set(key: string, digest: string): void {
    // A hint: what the line format cannot hold is simply not remembered.
    if (UNSAFE.test(key) || digest.includes('\n')) return;
    if (key !== this.#missed && this.#dirty.get(key) === undefined) {
      const at = this.#find(key);
      if (at !== undefined && this.#valueAt(at, key) === digest) return;
      if (at !== undefined) this.#replaced.add(at);
    }
    if (!this.#dirty.has(key)) this.#used.push(key);
    this.#dirty.set(key, digest);
  }

  async flush(options: Signal = {}): Promise<void> {
    if (this.#dirty.size === 0) return;
    options.signal?.throwIfAborted();
    const id = await statId(this.#file);
    const out = id !== undefined && id === this.#loadedAs ? this.#rewrite() : await this.#merge();
    await this.#persist(`${HEADER}${out.body}end ${out.lines}\n`);
    this.#reset(out.body, await statId(this.#file));
  }

  /**
   * The file is as loaded: this build's lines in its order, then the others, then new keys.
   * Runs of consecutive loaded lines are copied as one slice, so an edit of one file in a
   * 30,000-file context costs a few slices, not 30,000 strings.
   */
  #rewrite(): { body: string; lines: number } {
    const t = this.#text;
    const parts: string[] = [];
    let lines = 0;
    let runStart = 0;
    let runEnd = -1;
    const cut = (): void => {
      if (runEnd > runStart) parts.push(t.slice(runStart, runEnd));
      runEnd = -1;
    };
    const line = (at: number): void => {
      const end = t.indexOf('\n', at) + 1;
      if (at !== runEnd) {
        cut();
        runStart = at;
      }
      runEnd = end;
      lines++;
    };
    const entry = (key: string, value: string): void => {
      cut();
      parts.push(`${key}\t${value}\n`);
      lines++;
    };
    const done = new Set<number>(this.#replaced);
    const written = new Set<string>();
    const writeNew = (key: string): void => {
      if (written.has(key)) return;
      written.add(key);
      entry(key, this.#dirty.get(key) as string);
    };
    for (const u of this.#used) {
      if (typeof u === 'string') writeNew(u);
      else if (this.#replaced.has(u)) writeNew(t.slice(u, t.indexOf('\t', u)));
      else if (!done.has(u)) {
        done.add(u);
        line(u);
      }
    }
    forEachLine(t, (at) => {
      if (!done.has(at)) line(at);
    });
    for (const key of this.#dirty.keys()) writeNew(key);
    cut();
    return { body: parts.join(''), lines };
  }

  /** Another process wrote the file since: merge per key, last writer wins. */
  async #merge(): Promise<{ body: string; lines: number }> {
    const current = entriesOf(bodyOf((await readWithId(this.#file)).text));
    const lines: string[] = [];
    const written = new Set<string>();
    const put = (key: string, value: string): void => {
      if (written.has(key)) return;
      written.add(key);
      lines.push(`${key}\t${value}\n`);
    };
    for (const u of this.#used) {
      const key = typeof u === 'string' ? u : this.#text.slice(u, this.#text.indexOf('\t', u));
      put(key, this.#dirty.get(key) ?? current.get(key) ?? this.#valueAt(u as number, key));
    }
    for (const [key, value] of current) put(key, this.#dirty.get(key) ?? value);
    for (const [key, value] of this.#dirty) put(key, value);
    return { body: lines.join(''), lines: lines.length };
  }

  #reset(body: string, id: string | undefined): void {
    this.#text = body;
    this.#loadedAs = id;
    this.#pos = 0;
    this.#index = undefined;
    this.#scans = 0;
    this.#missed = undefined;
    this.#dirty.clear();
    this.#used = [];
    this.#replaced = new Set();
  }

  #matches(at: number, key: string): boolean {
    return this.#text.startsWith(key, at) && this.#text.charCodeAt(at + key.length) === TAB;
  }

  #valueAt(at: number, key: string): string {
    const start = at + key.length + 1;
    return this.#text.slice(start, this.#text.indexOf('\n', start));
  }

  /** Offset of `key`'s line, or undefined. */
  #find(key: string): number | undefined {
    const t = this.#text;
    if (this.#pos < t.length && this.#matches(this.#pos, key)) return this.#pos;
    // One line on: the old line of a file edited since is stepped over without a search.
    const next = t.indexOf('\n', this.#pos) + 1;
    if (next > 0 && next < t.length && this.#matches(next, key)) return next;
    if (this.#index === undefined && this.#scans < SCANS) {
      this.#scans++;
      if (this.#matches(0, key)) return 0;
      const found = t.indexOf(`\n${key}\t`);
      return found < 0 ? undefined : found + 1;
    }
    this.#index ??= indexOf(t);
    return this.#index.get(key);
  }
}

/** The file's text and identity (inode, size, times) as read through one descriptor. */
async function readWithId(file: string): Promise<{ text: string | undefined; id: string | undefined }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { text: undefined, id: undefined };
    throw err;
  }
  try {
    const st = await fh.stat({ bigint: true });
    return { text: await fh.readFile('utf8'), id: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` };
  } finally {
    await fh.close();
  }
}

async function statId(file: string): Promise<string | undefined> {
  try {
    const st = await stat(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** The lines of a complete memo file; '' for a missing, torn or foreign one. */
function bodyOf(raw: string | undefined): string {
  if (raw === undefined) return '';
  if (raw.startsWith('{')) return fromJson(raw);
  if (!raw.startsWith(HEADER)) return '';
  const trailer = raw.lastIndexOf('end ', raw.length - 2);
  if (trailer < HEADER.length || !raw.endsWith('\n') || raw.charCodeAt(trailer - 1) !== 10) return '';
  const count = Number(raw.slice(trailer + 4, -1));
  const body = raw.slice(HEADER.length, trailer);
  let lines = 0;
  for (let at = body.indexOf('\n'); at >= 0; at = body.indexOf('\n', at + 1)) lines++;
  return lines === count ? body : '';
}

/** The JSON object earlier versions wrote: read once, rewritten as lines on the next flush. */
function fromJson(raw: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return '';
  }
  if (typeof parsed !== 'object' || parsed === null) return '';
  const lines: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === 'string' && !UNSAFE.test(key) && !value.includes('\n')) lines.push(`${key}\t${value}\n`);
  }
  return lines.join('');
}

function indexOf(text: string): Map<string, number> {
  const index = new Map<string, number>();
  forEachLine(text, (at, tab) => {
    const key = text.slice(at, tab);
    if (!index.has(key)) index.set(key, at);
  });
  return index;
}

function entriesOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  forEachLine(text, (at, tab, end) => out.set(text.slice(at, tab), text.slice(tab + 1, end)));
  return out;
}

/** Calls `fn` with each `key\tvalue\n` line's start, tab and end; lines without a tab are skipped. */
function forEachLine(text: string, fn: (at: number, tab: number, end: number) => void): void {
  for (let at = 0; at < text.length; ) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    const tab = text.indexOf('\t', at);
    if (tab >= 0 && tab < end) fn(at, tab, end);
    at = end + 1;
  }
}
