/**
 * Lookups of `key\tvalue\n` lines in text[begin, end) that mostly come in the lines' own order
 * (a build walks files in the order the previous build recorded them). A lookup compares at a
 * cursor just after the previous hit, then one line further (a line of a file edited since is
 * stepped over), then scans the text a few times, and only then builds an index. No Map of
 * 30,000 keys for the usual case. Used by the stat memo (store/memo.ts) and the COPY reuse record
 * (builder/copy-reuse.ts).
 */
const TAB = 9;
/** Lookups served by scanning the text before it is indexed. */
const SCANS = 8;

export class LineCursor {
  /** The whole flat string is kept: comparing against slices of a slice costs twice as much. */
  readonly text: string;
  readonly begin: number;
  readonly end: number;
  #pos: number;
  #index: Map<string, number> | undefined;
  #scans = 0;

  constructor(text: string, begin = 0, end = text.length) {
    this.text = text;
    this.begin = begin;
    this.end = end;
    this.#pos = begin;
  }

  /** Offset of `key`'s line, or undefined. The cursor does not move (see `take`). */
  find(key: string): number | undefined {
    const t = this.text;
    if (this.#pos < this.end && this.#matches(this.#pos, key)) return this.#pos;
    const next = t.indexOf('\n', this.#pos) + 1;
    if (next > 0 && next < this.end && this.#matches(next, key)) return next;
    if (this.#index === undefined && this.#scans < SCANS) {
      this.#scans++;
      if (this.begin < this.end && this.#matches(this.begin, key)) return this.begin;
      const found = t.indexOf(`\n${key}\t`, this.begin);
      return found < 0 || found + 1 >= this.end ? undefined : found + 1;
    }
    this.#index ??= indexLines(t, this.begin, this.end);
    return this.#index.get(key);
  }

  /** The value on `key`'s line at `at`. */
  valueAt(at: number, key: string): string {
    const start = at + key.length + 1;
    return this.text.slice(start, this.text.indexOf('\n', start));
  }

  /** The value on `key`'s line at `at`; the next lookup is expected on the line after it. */
  take(at: number, key: string): string {
    const start = at + key.length + 1;
    const end = this.text.indexOf('\n', start);
    this.#pos = end + 1;
    return this.text.slice(start, end);
  }

  #matches(at: number, key: string): boolean {
    const tab = at + key.length;
    return this.text.charCodeAt(tab) === TAB && this.text.slice(at, tab) === key;
  }
}

/** Calls `fn` with each `key\tvalue\n` line's start, tab and end in text[begin, end); lines without a tab are skipped. */
export function forEachLine(text: string, begin: number, end: number, fn: (at: number, tab: number, end: number) => void): void {
  for (let at = begin; at < end; ) {
    let lineEnd = text.indexOf('\n', at);
    if (lineEnd < 0 || lineEnd > end) lineEnd = end;
    const tab = text.indexOf('\t', at);
    if (tab >= 0 && tab < lineEnd) fn(at, tab, lineEnd);
    at = lineEnd + 1;
  }
}

/** key -> offset of its first line. */
function indexLines(text: string, begin: number, end: number): Map<string, number> {
  const index = new Map<string, number>();
  forEachLine(text, begin, end, (at, tab) => {
    const key = text.slice(at, tab);
    if (!index.has(key)) index.set(key, at);
  });
  return index;
}
