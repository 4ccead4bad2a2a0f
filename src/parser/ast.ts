/**
 * BuildKit's low-level AST (frontend/dockerfile/parser): one node per logical line, arguments
 * split per instruction by the "line parsers". This is what `result` dumps and what typed
 * instructions are built from.
 */
import { isSpace, trimLeftSpace, trimSpace } from './gostr.js';

export interface RawHeredoc {
  name: string;
  fileDescriptor: number;
  expand: boolean;
  chomp: boolean;
  /** Body lines exactly as read, each with its line terminator. */
  content: string;
}

export interface AstNode {
  /** The instruction keyword as written (case preserved). */
  value: string;
  /** Leading `--flags`, as written (quotes removed). */
  flags: string[];
  /** Arguments after the line parser (the `Next` chain). */
  next: string[];
  /** ONBUILD's nested instruction. */
  sub?: AstNode;
  /** Arguments came from a JSON array. */
  json: boolean;
  /** The logical line (continuations joined), as BuildKit's node.Original. */
  original: string;
  startLine: number;
  endLine: number;
  heredocs: RawHeredoc[];
}

export class AstError extends Error {}

export interface LineContext {
  escapeToken: string;
  /** ONBUILD nesting depth (bounded: deep chains would recurse once per word). */
  depth?: number;
}

const maxOnbuildDepth = 8;

const reWhitespace = /[\t\v\f\r ]+/;

/** regexp.Split(s, -1) for [\t\v\f\r ]+ (keeps Go's leading/trailing empty strings). */
function splitWhitespace(s: string): string[] {
  return s.split(/[\t\v\f\r ]+/);
}

/**
 * Extract leading `--flags`. BuildKit walks bytes, not runes, and turns each byte into a rune;
 * this walks the UTF-8 bytes the same way so exotic input produces the same result.
 */
export function extractBuilderFlags(line: string): { rest: string; flags: string[] } {
  const bytes = Buffer.from(line, 'utf8');
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = 0;
  let blankOK = false;
  let ch = 0;
  const restFrom = (pos: number): string => bytes.subarray(pos).toString('utf8');
  for (let pos = 0; pos <= bytes.length; pos++) {
    if (pos !== bytes.length) ch = bytes[pos] as number;
    if (phase === 'spaces') {
      if (pos === bytes.length) break;
      if (isSpace(ch)) continue;
      if (ch !== 0x2d || pos + 1 === bytes.length || bytes[pos + 1] !== 0x2d) return { rest: restFrom(pos), flags: words };
      phase = 'word';
    }
    if (pos === bytes.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: restFrom(pos), flags: words };
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) { quote = ch; blankOK = true; phase = 'quote'; continue; }
      if (ch === 0x5c) {
        if (pos + 1 === bytes.length) continue;
        pos++;
        ch = bytes[pos] as number;
      }
      word += String.fromCharCode(ch);
      continue;
    }
    if (ch === quote) { phase = 'word'; continue; }
    if (ch === 0x5c) {
      if (pos + 1 === bytes.length) { phase = 'word'; continue; }
      pos++;
      ch = bytes[pos] as number;
    }
    word += String.fromCharCode(ch);
  }
  return { rest: '', flags: words };
}

/**
 * BuildKit's flag scanner appends each UTF-8 byte as its own rune, so non-ASCII flag text comes
 * out as Latin-1 mojibake (kept for the dump). Typed instructions want the real text back.
 */
export function decodeGoBytes(flag: string): string {
  return /[\u0080-\u00ff]/.test(flag) ? Buffer.from(flag, 'latin1').toString('utf8') : flag;
}

export function splitCommand(line: string): { cmd: string; flags: string[]; args: string } {
  const trimmed = trimSpace(line);
  const m = reWhitespace.exec(trimmed);
  const cmd = m === null ? trimmed : trimmed.slice(0, m.index);
  let args = '';
  let flags: string[] = [];
  if (m !== null) {
    const r = extractBuilderFlags(trimmed.slice(m.index + m[0].length));
    args = r.rest;
    flags = r.flags;
  }
  return { cmd, flags, args: trimSpace(args) };
}

/** Quote-aware word split that keeps quotes and escapes (parseWords). */
export function parseWords(rest: string, ctx: LineContext): string[] {
  const words: string[] = [];
  const cps = Array.from(rest);
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= cps.length; pos++) {
    let ch = pos < cps.length ? (cps[pos] as string) : '';
    if (phase === 'spaces') {
      if (pos === cps.length) break;
      if (isSpace(ch.codePointAt(0) ?? 0)) continue;
      phase = 'word';
    }
    if (pos === cps.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch.codePointAt(0) ?? 0)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') { quote = ch; blankOK = true; phase = 'quote'; }
      if (ch === ctx.escapeToken) {
        if (pos + 1 === cps.length) continue; // an escape at end of line is dropped
        // Unquoted escape: keep it and the next char verbatim, even a quote.
        word += ch;
        pos++;
        ch = cps[pos] as string;
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    // Inside single quotes the escape token is literal.
    if (ch === ctx.escapeToken && quote !== "'") {
      if (pos + 1 === cps.length) { phase = 'word'; continue; }
      pos++;
      word += ch;
      ch = cps[pos] as string;
    }
    word += ch;
  }
  return words;
}

function parseNameVal(rest: string, key: string, ctx: LineContext): string[] {
  const words = parseWords(rest, ctx);
  if (words.length === 0) return [];
  if (!(words[0] as string).includes('=')) {
    // Legacy `KEY name value`: the value is everything after the first blank run.
    const m = reWhitespace.exec(rest);
    if (m === null) throw new AstError(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''];
  }
  const out: string[] = [];
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw new AstError(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    out.push(w.slice(0, i), w.slice(i + 1), '=');
  }
  return out;
}

const notStringArray = 'when using JSON array syntax, arrays must be comprised of strings only';

/** JSON array of strings, or undefined when the text is not a JSON array (then: shell form). */
function parseJSON(rest: string): string[] | undefined {
  const r = trimLeftSpace(rest);
  if (!r.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(r);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  return parsed.map((v: unknown) => {
    if (typeof v !== 'string') throw new AstError(notStringArray);
    // Go's decoder turns lone surrogates into U+FFFD.
    return v.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  });
}

type Parsed = { next: string[]; json?: boolean; sub?: AstNode };

function maybeJSON(rest: string): Parsed {
  if (rest === '') return { next: [] };
  const j = parseJSON(rest);
  return j === undefined ? { next: [rest] } : { next: j, json: true };
}

function maybeJSONToList(rest: string): Parsed {
  const j = parseJSON(rest);
  if (j !== undefined) return { next: j, json: true };
  return { next: rest === '' ? [] : splitWhitespace(rest) };
}

function healthConfig(rest: string): Parsed {
  // BuildKit scans bytes here; only ASCII separators matter in practice.
  let sep = 0;
  while (sep < rest.length && !isSpace(rest.charCodeAt(sep))) sep++;
  let next = sep;
  while (next < rest.length && isSpace(rest.charCodeAt(next))) next++;
  if (sep === 0) return { next: [] };
  const cmd = maybeJSON(rest.slice(next));
  return { next: [rest.slice(0, sep), ...cmd.next], ...(cmd.json === true ? { json: true } : {}) };
}

const lineParsers: Record<string, (rest: string, ctx: LineContext) => Parsed> = {
  add: maybeJSONToList,
  arg: (rest, ctx) => ({ next: parseWords(rest, ctx) }),
  cmd: maybeJSON,
  copy: maybeJSONToList,
  entrypoint: maybeJSON,
  env: (rest, ctx) => ({ next: parseNameVal(rest, 'ENV', ctx) }),
  expose: (rest) => ({ next: rest === '' ? [] : splitWhitespace(rest) }),
  from: (rest) => ({ next: rest === '' ? [] : splitWhitespace(rest) }),
  healthcheck: healthConfig,
  label: (rest, ctx) => ({ next: parseNameVal(rest, 'LABEL', ctx) }),
  maintainer: (rest) => ({ next: rest === '' ? [] : [rest] }),
  onbuild: (rest, ctx) => {
    if (rest === '') return { next: [] };
    const depth = (ctx.depth ?? 0) + 1;
    // BuildKit parses any chain and rejects it later; past a few levels only the rejection matters.
    if (depth > maxOnbuildDepth) throw new AstError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
    return { next: [], sub: newNodeFromLine(rest, { ...ctx, depth }) };
  },
  run: maybeJSON,
  shell: maybeJSON,
  stopsignal: (rest) => ({ next: rest === '' ? [] : [rest] }),
  user: (rest) => ({ next: rest === '' ? [] : [rest] }),
  volume: maybeJSONToList,
  workdir: (rest) => ({ next: rest === '' ? [] : [rest] }),
};

export const knownInstructions: readonly string[] = Object.keys(lineParsers);

export function newNodeFromLine(line: string, ctx: LineContext): AstNode {
  const { cmd, flags, args } = splitCommand(line);
  const fn = lineParsers[cmd.toLowerCase()];
  // Unknown instructions still parse (as one empty argument); the typed layer rejects them.
  const parsed = fn === undefined ? { next: [''] } : fn(args, ctx);
  const node: AstNode = {
    value: cmd, flags, next: parsed.next, json: parsed.json ?? false, original: line,
    startLine: 0, endLine: 0, heredocs: [],
  };
  if (parsed.sub !== undefined) node.sub = parsed.sub;
  return node;
}

const heredocKinds = new Set(['add', 'copy', 'run']);

export function canContainHeredoc(node: AstNode): boolean {
  const n = node.value.toLowerCase() === 'onbuild' && node.sub !== undefined ? node.sub : node;
  return heredocKinds.has(n.value.toLowerCase()) && !n.json;
}
