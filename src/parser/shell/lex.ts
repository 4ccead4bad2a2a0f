/**
 * BuildKit's shell-word lexer (frontend/dockerfile/shell/lex.go): quote removal, escapes and
 * variable expansion, optionally with word splitting. Pure: no I/O, no process env.
 */
import { isSpace } from '../gostr.js';
import { PatternError, replacePattern, trimPrefix, trimSuffix } from './pattern.js';

export type EnvSource = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

export interface LexOptions {
  escape?: '\\' | '`';
  /** Keep quote characters in the output (used to detect quoted heredoc delimiters). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to "". */
  skipUnsetEnv?: boolean;
}

export interface ExpandResult {
  result: string;
  words: string[];
  /** Variables referenced and found in the environment. */
  matched: Set<string>;
  /** Variables referenced but not set. */
  unmatched: Set<string>;
}

/** Raised for malformed words; the parser wraps it into a DockerfileError with a location. */
export class ShellLexError extends Error {
  constructor(message: string, readonly word: string) {
    super(`failed to process "${word}": ${message}`);
    this.name = 'ShellLexError';
  }
}

const EOF = -1;
const isDigit = (cp: number): boolean => cp >= 0 && /\p{Nd}/u.test(String.fromCodePoint(cp));
const isLetter = (cp: number): boolean => cp >= 0 && /\p{L}/u.test(String.fromCodePoint(cp));
const isSpecialParam = (cp: number): boolean => '@*#?-$!0'.includes(String.fromCodePoint(cp));
const str = (cp: number): string => (cp === EOF ? '\uFFFD' : String.fromCodePoint(cp));

class Words {
  buf = '';
  words: string[] = [];
  inWord = false;
  addChar(cp: number): void {
    if (isSpace(cp) && this.inWord) {
      if (this.buf.length !== 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else if (!isSpace(cp)) {
      this.addRawChar(cp);
    }
  }
  addRawChar(cp: number): void { this.buf += String.fromCodePoint(cp); this.inWord = true; }
  addString(s: string): void { for (const ch of s) this.addChar(ch.codePointAt(0) ?? 0); }
  addRawString(s: string): void { this.buf += s; this.inWord = true; }
  get(): string[] {
    if (this.buf.length > 0) { this.words.push(this.buf); this.buf = ''; this.inWord = false; }
    return this.words;
  }
}

/**
 * How deeply `${…}` may nest (`${a:-${b:-…}}`). The lexer is recursive descent, as BuildKit's is,
 * but Go grows its stacks and V8 does not: near 3,000 levels the JS stack overflowed. A bound with
 * its own message instead; real Dockerfiles nest a few levels.
 */
export const MAX_SUBSTITUTION_DEPTH = 1000;

class ShellWord {
  private pos = 0;
  private depth = 0;
  private readonly cps: number[];
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  /** The word itself when it has no astral characters (then code-point index = string index). */
  private readonly bmp: string | undefined;

  constructor(word: string, private readonly env: EnvSource, private readonly opts: LexOptions, private readonly escape: number) {
    this.cps = Array.from(word, (c) => c.codePointAt(0) ?? 0);
    this.rawEscapes = opts.rawEscapes ?? false;
    this.bmp = this.cps.length === word.length ? word : undefined;
  }

  /**
   * The run of ordinary characters at the cursor, consumed as one slice: appending long words a
   * character at a time made megabyte values spend seconds in the garbage collector.
   */
  private plainRun(stop: number, inQuote: 0 | 0x22 | 0x27 = 0): string {
    if (this.bmp === undefined) return '';
    const start = this.pos;
    let end = start;
    const cps = this.cps;
    while (end < cps.length) {
      const c = cps[end] as number;
      if (inQuote === 0x27 ? c === 0x27 : c === 0x24 || c === 0x22 || c === this.escape || (inQuote === 0 && (c === 0x27 || c === stop || isSpace(c)))) break;
      end++;
    }
    this.pos = end;
    return this.bmp.slice(start, end);
  }

  private peek(): number { return this.pos < this.cps.length ? (this.cps[this.pos] as number) : EOF; }
  private next(): number { return this.pos < this.cps.length ? (this.cps[this.pos++] as number) : EOF; }

  private getEnv(name: string): string | undefined {
    const env = this.env;
    let v: string | undefined;
    if (env instanceof Map) v = (env as ReadonlyMap<string, string>).get(name);
    else if (Object.hasOwn(env, name)) v = (env as Readonly<Record<string, string>>)[name];
    (v === undefined ? this.unmatched : this.matched).add(name);
    return v;
  }

  processStopOn(stop: number, rawEscapes: boolean): [string, string[]] {
    let result = '';
    const words = new Words();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const run = this.plainRun(stop);
        if (run !== '') {
          result += run;
          words.addRawString(run);
          continue;
        }
        let ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return [result, words.get()];
        }
        const quoteChar = !(this.opts.skipProcessQuotes ?? false) && (ch === 0x27 || ch === 0x22);
        if (ch === 0x24 || quoteChar) {
          const tmp = ch === 0x24 ? this.processDollar() : ch === 0x27 ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          if (ch === 0x24) words.addString(tmp);
          else words.addRawString(tmp);
          continue;
        }
        ch = this.next();
        if (ch === this.escape) {
          if (this.rawEscapes) { words.addRawChar(ch); result += str(ch); }
          // The escape character escapes the next one, except at end of input.
          ch = this.next();
          if (ch === EOF) break;
          words.addRawChar(ch);
        } else {
          words.addChar(ch);
        }
        result += str(ch);
      }
      if (stop !== EOF) throw new Error(`unexpected end of statement while looking for matching ${str(stop)}`);
      return [result, words.get()];
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    const raw = this.opts.rawQuotes ?? false;
    let ch = this.next();
    if (raw) result += str(ch);
    for (;;) {
      result += this.plainRun(EOF, 0x27);
      ch = this.next();
      if (ch === EOF) throw new Error('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) { if (raw) result += str(ch); return result; }
      result += str(ch);
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const raw = this.opts.rawQuotes ?? false;
    const open = this.next();
    if (raw) result += str(open);
    for (;;) {
      result += this.plainRun(EOF, 0x22);
      const p = this.peek();
      if (p === EOF) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) { const c = this.next(); if (raw) result += str(c); return result; }
      if (p === 0x24) { result += this.processDollar(); continue; }
      let ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += str(ch);
        const n = this.peek();
        if (n === EOF) continue; // a trailing escape is dropped, then the missing quote is reported
        if (n === 0x22 || n === 0x24 || n === this.escape) ch = this.next();
      }
      result += str(ch);
    }
  }

  private processDollar(): string {
    if (this.depth === MAX_SUBSTITUTION_DEPTH) throw new Error(`variable substitutions nested more than ${MAX_SUBSTITUTION_DEPTH} levels deep`);
    this.depth++;
    try {
      return this.processDollarAt();
    } finally {
      this.depth--;
    }
  }

  private processDollarAt(): string {
    this.next();
    if (this.peek() !== 0x7b) {
      const name = this.processName();
      if (name === '') return '$';
      const v = this.getEnv(name);
      if (v === undefined && (this.opts.skipUnsetEnv ?? false)) return '$' + name;
      return v ?? '';
    }
    this.next();
    const p = this.peek();
    if (p === EOF) throw new Error("syntax error: missing '}'");
    if (p === 0x7b || p === 0x7d || p === 0x3a) throw new Error('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = str(ch);
    const skipUnset = this.opts.skipUnsetEnv ?? false;
    if (ch === 0x7d) {
      const v = this.getEnv(name);
      if (v === undefined && skipUnset) return `\${${name}}`;
      return v ?? '';
    }
    if (ch === 0x2f) return this.processReplace(name);
    let nullIsUnset = false;
    if (ch === 0x3a) {
      nullIsUnset = true;
      ch = this.next();
      chs += str(ch);
    } else if (!'+-?#%'.includes(str(ch))) {
      throw new Error(`unsupported modifier (${chs}) in substitution`);
    }
    const patternMod = ch === 0x23 || ch === 0x25;
    if (nullIsUnset && patternMod) throw new Error(`unsupported modifier (${chs}) in substitution`);
    let word: string;
    try {
      [word] = this.processStopOn(0x7d, patternMod);
    } catch (err) {
      if (this.peek() === EOF) throw new Error("syntax error: missing '}'", { cause: err });
      throw err;
    }
    const value = this.getEnv(name);
    if (skipUnset && value === undefined) return `\${${name}${chs}${word}}`;
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (ch) {
      case 0x2d: return unset ? word : (value ?? '');
      case 0x2b: return unset ? '' : word;
      case 0x3f:
        if (value === undefined) throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case 0x25: case 0x23: {
        // %/# remove the shortest match, %%/## the longest.
        const greedy = word.length > 0 && word.codePointAt(0) === ch;
        const pat = greedy ? word.slice(1) : word;
        try {
          return ch === 0x25 ? trimSuffix(pat, value ?? '', greedy) : trimPrefix(pat, value ?? '', greedy);
        } catch (err) {
          if (err instanceof PatternError) throw new Error(`invalid pattern (${pat}) in substitution: ${err.message}`);
          throw err;
        }
      }
      default:
        throw new Error(`unsupported modifier (${chs}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const all = this.peek() === 0x2f;
    if (all) this.next();
    let pattern: string;
    let replacement: string;
    try {
      [pattern] = this.processStopOn(0x2f, true);
    } catch (err) {
      if (this.peek() === EOF) throw new Error("syntax error: missing '/' in ${}", { cause: err });
      throw err;
    }
    try {
      [replacement] = this.processStopOn(0x7d, true);
    } catch (err) {
      if (this.peek() === EOF) throw new Error("syntax error: missing '}'", { cause: err });
      throw err;
    }
    const value = this.getEnv(name);
    if ((this.opts.skipUnsetEnv ?? false) && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
    try {
      return replacePattern(value ?? '', pattern, replacement, all);
    } catch (err) {
      if (err instanceof PatternError) throw new Error(`invalid pattern (${pattern}) in substitution: ${err.message}`);
      throw err;
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += str(this.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) return str(this.next());
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += str(this.next());
    }
    return name;
  }
}

/** Full-featured entry point: expansion, word split and the variables it touched. */
export function processWord(word: string, env: EnvSource, options: LexOptions = {}): ExpandResult {
  const escape = (options.escape ?? '\\').codePointAt(0) ?? 0x5c;
  const sw = new ShellWord(word, env, options, escape);
  try {
    const [result, words] = sw.processStopOn(EOF, options.rawEscapes ?? false);
    return { result, words, matched: sw.matched, unmatched: sw.unmatched };
  } catch (err) {
    if (err instanceof Error) throw new ShellLexError(err.message, word);
    throw err;
  }
}
