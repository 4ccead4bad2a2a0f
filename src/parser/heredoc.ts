/** Heredoc delimiter detection, as BuildKit's parser does it (with its shell lexer). */
import type { RawHeredoc } from './ast.js';
import { processWord } from './shell/lex.js';

const reHeredoc = /^(\d*)<<(-?)([^<]*)$/;
const empty: Record<string, string> = {};

export class HeredocError extends Error {}

/** A heredoc marker word such as `<<EOF`, `<<-"EOF"`, `3<<EOF`; undefined when it is not one. */
export function parseHeredocWord(src: string): Omit<RawHeredoc, 'content'> | undefined {
  const m = reHeredoc.exec(src);
  if (m === null) return undefined;
  const rest = m[3] ?? '';
  if (rest === '') return undefined;
  let words: string[];
  let raw: string[];
  try {
    words = processWord(rest, empty, { skipUnsetEnv: true }).words;
    if (words.length !== 1) return undefined;
    raw = processWord(rest, empty, { skipUnsetEnv: true, rawQuotes: true }).words;
  } catch (err) {
    throw new HeredocError(err instanceof Error ? err.message : String(err));
  }
  if (raw.length !== words.length) throw new HeredocError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const word = words[0] as string;
  const quotes = (s: string): number => s.split(/['"]/).length - 1;
  return {
    name: word,
    // Any quoting of the delimiter disables expansion of the body.
    expand: quotes(word) === quotes(raw[0] as string),
    chomp: m[2] === '-',
    fileDescriptor: m[1] === '' || m[1] === undefined ? 0 : Number(m[1]),
  };
}

export function heredocsFromLine(line: string): Omit<RawHeredoc, 'content'>[] {
  let words: string[];
  try {
    words = processWord(line, empty, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    words = [];
  }
  const docs: Omit<RawHeredoc, 'content'>[] = [];
  for (const w of words) {
    const h = parseHeredocWord(w);
    if (h !== undefined) docs.push(h);
  }
  return docs;
}

/** Strip leading tabs from every line (`<<-`). */
export function chompHeredocContent(src: string): string {
  return src.replace(/^\t+/gm, '');
}
