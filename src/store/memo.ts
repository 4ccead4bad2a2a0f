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
import { forEachLine, LineCursor } from '../util/line-cursor.js';
import type { ContentMemo, Signal } from './types.js';

const HEADER = 'tsbuild-memo 1\n';
const UNSAFE = /[\t\n]/;

export class MemoFile implements ContentMemo {
  readonly #file: string;
  readonly #persist: (text: string) => Promise<void>;
  /** The loaded file: its `key\tvalue\n` lines are #text[#begin, #end). The whole string is kept (a
   * flat string: comparisons against a slice of it cost twice as much). */
  #text = '';
  #begin = 0;
  #end = 0;
  /** Lookups in the loaded lines, expected in their order. */
  #lines = new LineCursor('');
  /** Loaded from an earlier version's JSON: flush rewrites it even with nothing new. */
  #convert = false;
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
    // Entries set but not yet flushed (another build in this process) stay to be written.
    const unflushed = [...this.#dirty];
    const lines = linesOf(text);
    this.#reset(lines, id);
    // A JSON memo of an earlier version is written as lines on the next flush, change or not.
    this.#convert = lines.json === true && lines.end > 0;
    for (const [key, digest] of unflushed) this.set(key, digest);
  }

  get(key: string): string | undefined {
    // Hashing the key for an empty table is most of a warm lookup's cost.
    const dirty = this.#dirty.size > 0 ? this.#dirty.get(key) : undefined;
    if (dirty !== undefined) return dirty;
    const at = this.#lines.find(key);
    if (at === undefined) {
      this.#missed = key;
      return undefined;
    }
    this.#used.push(at);
    return this.#lines.take(at, key);
  }

  set(key: string, digest: string): void {
    // A hint: what the line format cannot hold is simply not remembered.
    if (UNSAFE.test(key) || digest.includes('\n')) return;
    if (key !== this.#missed && this.#dirty.get(key) === undefined) {
      const at = this.#lines.find(key);
      if (at !== undefined && this.#lines.valueAt(at, key) === digest) return;
      if (at !== undefined) this.#replaced.add(at);
    }
    if (!this.#dirty.has(key)) this.#used.push(key);
    this.#dirty.set(key, digest);
  }

  async flush(options: Signal = {}): Promise<void> {
    if (this.#dirty.size === 0 && !this.#convert) return;
    options.signal?.throwIfAborted();
    const id = await statId(this.#file);
    const out = id !== undefined && id === this.#loadedAs ? this.#rewrite() : await this.#merge();
    await this.#persist(`${HEADER}${out.body}end ${out.lines}\n`);
    this.#reset({ text: out.body, begin: 0, end: out.body.length }, await statId(this.#file));
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
    forEachLine(t, this.#begin, this.#end, (at) => {
      if (!done.has(at)) line(at);
    });
    for (const key of this.#dirty.keys()) writeNew(key);
    cut();
    return { body: parts.join(''), lines };
  }

  /** Another process wrote the file since: merge per key, last writer wins. */
  async #merge(): Promise<{ body: string; lines: number }> {
    const current = entriesOf(linesOf((await readWithId(this.#file)).text));
    const lines: string[] = [];
    const written = new Set<string>();
    const put = (key: string, value: string): void => {
      if (written.has(key)) return;
      written.add(key);
      lines.push(`${key}\t${value}\n`);
    };
    for (const u of this.#used) {
      const key = typeof u === 'string' ? u : this.#text.slice(u, this.#text.indexOf('\t', u));
      put(key, this.#dirty.get(key) ?? current.get(key) ?? this.#lines.valueAt(u as number, key));
    }
    for (const [key, value] of current) put(key, this.#dirty.get(key) ?? value);
    for (const [key, value] of this.#dirty) put(key, value);
    return { body: lines.join(''), lines: lines.length };
  }

  #reset(lines: Lines, id: string | undefined): void {
    this.#text = lines.text;
    this.#begin = lines.begin;
    this.#end = lines.end;
    this.#loadedAs = id;
    this.#lines = new LineCursor(lines.text, lines.begin, lines.end);
    this.#missed = undefined;
    this.#dirty.clear();
    this.#used = [];
    this.#replaced = new Set();
    this.#convert = false;
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

/** Where a memo file's `key\tvalue\n` lines are: text[begin, end). */
interface Lines {
  text: string;
  begin: number;
  end: number;
  /** Converted from the JSON object of an earlier version. */
  json?: boolean;
}

const NONE: Lines = { text: '', begin: 0, end: 0 };

/** The lines of a complete memo file; none for a missing, torn or foreign one. */
function linesOf(raw: string | undefined): Lines {
  if (raw === undefined) return NONE;
  if (raw.startsWith('{')) return fromJson(raw);
  if (!raw.startsWith(HEADER)) return NONE;
  const trailer = raw.lastIndexOf('end ', raw.length - 2);
  if (trailer < HEADER.length || !raw.endsWith('\n') || raw.charCodeAt(trailer - 1) !== 10) return NONE;
  const count = Number(raw.slice(trailer + 4, -1));
  let lines = 0;
  for (let at = raw.indexOf('\n', HEADER.length); at >= 0 && at < trailer; at = raw.indexOf('\n', at + 1)) lines++;
  return lines === count ? { text: raw, begin: HEADER.length, end: trailer } : NONE;
}

/** The JSON object earlier versions wrote: read once, rewritten as lines on the next flush. */
function fromJson(raw: string): Lines {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return NONE;
  }
  if (typeof parsed !== 'object' || parsed === null) return NONE;
  const lines: string[] = [];
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value === 'string' && !UNSAFE.test(key) && !value.includes('\n')) lines.push(`${key}\t${value}\n`);
  }
  const text = lines.join('');
  return { text, begin: 0, end: text.length, json: true };
}

function entriesOf({ text, begin, end }: Lines): Map<string, string> {
  const out = new Map<string, string>();
  forEachLine(text, begin, end, (at, tab, lineEnd) => out.set(text.slice(at, tab), text.slice(tab + 1, lineEnd)));
  return out;
}

