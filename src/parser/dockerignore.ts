/**
 * .dockerignore with moby/patternmatcher semantics: `*`, `?`, `[...]`, `**`, `!` exceptions
 * (last match wins), patterns cleaned like filepath.Clean, a path is ignored when it or any parent
 * directory matches.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from '../util/abort.js';
import { patternRegExp } from '../util/regex.js';
import { DockerfileError } from './errors.js';

export interface IgnorePattern {
  /** Cleaned pattern, without the leading `!`. */
  pattern: string;
  /** A `!` exception: re-includes what earlier patterns ignored. */
  exclusion: boolean;
}

/** Go's path.Clean for slash-separated paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = out.join('/');
  return rooted ? '/' + s : s === '' ? '.' : s;
}

const goTrim = (s: string): string => s.replace(/^[\s\u0085]+|[\s\u0085]+$/g, '');

/** Parse .dockerignore text (patternmatcher/ignorefile.ReadAll). */
/**
 * Patterns a .dockerignore may hold: each is matched against every path of the context, and 8
 * million one-letter lines (16 MiB) took 21 s and 2.3 GB of heap. Far above a generated list.
 */
export const MAX_IGNORE_PATTERNS = 100_000;

export function parseDockerignore(text: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  text.replace(/^\ufeff/, '').split('\n').forEach((rawLine) => {
    // Comments are only lines whose very first character is '#'.
    if (rawLine.startsWith('#')) return;
    let p = goTrim(rawLine);
    if (p === '') return;
    const exclusion = p.startsWith('!');
    if (exclusion) p = goTrim(p.slice(1));
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    if (exclusion && p === '') throw new DockerfileError('illegal exclusion pattern: "!"', { file: '.dockerignore' });
    if (out.length === MAX_IGNORE_PATTERNS) {
      throw new DockerfileError(`more than ${MAX_IGNORE_PATTERNS} patterns`, { file: '.dockerignore', hint: 'a .dockerignore lists patterns, not every file' });
    }
    out.push({ pattern: p, exclusion });
  });
  return out;
}

type Compiled = { exclusion: boolean; dirs: string[]; test: (path: string) => boolean };

const shouldEscape = (ch: string): boolean => '.+()|{}$'.includes(ch);

function compile(pattern: string): (path: string) => boolean {
  const chars = Array.from(pattern);
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  for (let i = 0, k = 0; k < chars.length; i++) {
    const ch = chars[k++] as string;
    if (ch === '*') {
      if (chars[k] === '*') {
        k++;
        if (chars[k] === '/') k++; // treat **/ as **
        if (k >= chars.length) {
          if (type === 'exact') type = 'prefix';
          else { re += '.*'; type = 'regexp'; }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (i === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      // One character, a surrogate pair included, without the 'u' flag (see below).
      re += '(?:[\\uD800-\\uDBFF][\\uDC00-\\uDFFF]|[^/])';
      type = 'regexp';
    } else if (shouldEscape(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (k < chars.length) { re += '\\' + (chars[k++] as string); type = 'regexp'; } else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = 'regexp';
    } else {
      re += ch;
    }
  }
  if (type === 'exact') return (p) => p === pattern;
  if (type === 'prefix') { const pre = pattern.slice(0, -2); return (p) => p.startsWith(pre); }
  if (type === 'suffix') {
    const suffix = pattern.slice(2);
    return (p) => p.startsWith(suffix) || p.endsWith(suffix.slice(1));
  }
  // No 'u' flag: V8's linear-time fallback (util/regex.ts) does not take it, and a pattern of many
  // stars must not backtrack for hours.
  let rx: RegExp;
  try {
    rx = patternRegExp(re + '$');
  } catch {
    throw new DockerfileError(`syntax error in pattern: ${pattern}`, { file: '.dockerignore' });
  }
  return (p) => rx.test(p);
}

/** filepath.Match's syntax check: an unclosed class or a trailing escape is an error. */
function validate(pattern: string): void {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') { if (i + 1 >= pattern.length) throw new DockerfileError(`syntax error in pattern: ${pattern}`, { file: '.dockerignore' }); i++; continue; }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
  }
  if (inClass) throw new DockerfileError(`syntax error in pattern: ${pattern}`, { file: '.dockerignore' });
}

export interface IgnoreMatcher {
  /** relPath is slash-separated, relative to the context root. */
  ignores(relPath: string): boolean;
  /**
   * Whether some path below `dirRelPath` could be re-included by a `!` pattern, i.e. whether a
   * walker must still descend into an ignored directory.
   */
  mayMatchInside(dirRelPath: string): boolean;
}

const dirName = (p: string): string => {
  const i = p.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : cleanPath(p.slice(0, i));
};

export function createIgnoreMatcher(patterns: readonly IgnorePattern[]): IgnoreMatcher {
  const compiled: Compiled[] = [];
  for (const { pattern, exclusion } of patterns) {
    const p = cleanPath(goTrim(pattern));
    if (goTrim(pattern) === '') continue;
    validate(p);
    compiled.push({ exclusion, dirs: p.split('/'), test: compile(p) });
  }
  const exclusions = compiled.filter((c) => c.exclusion);
  return {
    ignores(relPath: string): boolean {
      const file = cleanPath(relPath);
      const parent = dirName(file);
      const parentDirs = parent.split('/');
      let matched = false;
      for (const c of compiled) {
        // An inclusion only matters while not matched; an exclusion only once matched.
        if (c.exclusion !== matched) continue;
        let m = c.test(file);
        if (!m && parent !== '.') {
          for (let i = 0; i < parentDirs.length && !m; i++) m = c.test(parentDirs.slice(0, i + 1).join('/'));
        }
        if (m) matched = !c.exclusion;
      }
      return matched;
    },
    mayMatchInside(dirRelPath: string): boolean {
      const parts = cleanPath(dirRelPath).split('/');
      return exclusions.some((c) => {
        for (let i = 0; i < parts.length; i++) {
          const pd = c.dirs[i];
          if (pd === undefined || pd.includes('**')) return true; // conservative: may re-include
          if (!compile(pd)(parts[i] as string)) return false;
        }
        return true;
      });
    },
  };
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/**
 * The ignore file for a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
 * `<context>/.dockerignore`. Undefined when neither exists.
 */
export async function findDockerignore(dockerfilePath: string, contextDir: string, options: { signal?: AbortSignal } = {}): Promise<string | undefined> {
  throwIfAborted(options.signal);
  const specific = `${dockerfilePath}.dockerignore`;
  if (await exists(specific)) return specific;
  throwIfAborted(options.signal);
  const generic = join(contextDir, '.dockerignore');
  if (await exists(generic)) return generic;
  return undefined;
}
