/**
 * Public word-expansion API. Errors are DockerfileErrors without a location (line 0); the builder
 * attaches the instruction's location with `err.withLocation(...)`.
 */
import { DockerfileError } from '../errors.js';
import { processWord, ShellLexError, type EnvSource, type ExpandResult, type LexOptions } from './lex.js';

export type { EnvSource, ExpandResult, LexOptions } from './lex.js';
export { ShellLexError } from './lex.js';

export interface ExpandOptions {
  escape?: '\\' | '`';
  /** Keep `$NAME` / `${NAME...}` text for unset variables instead of expanding to "". */
  skipUnsetEnv?: boolean;
  /** Quotes are plain characters (BuildKit's SkipProcessQuotes): `$` still expands inside them. */
  skipProcessQuotes?: boolean;
}

function run(word: string, env: EnvSource, options: LexOptions): ExpandResult {
  try {
    return processWord(word, env, options);
  } catch (err) {
    if (err instanceof ShellLexError) throw new DockerfileError(err.message, { cause: err });
    throw err;
  }
}

const lexOptions = (o: ExpandOptions): LexOptions => ({
  ...(o.escape === undefined ? {} : { escape: o.escape }),
  ...(o.skipUnsetEnv === undefined ? {} : { skipUnsetEnv: o.skipUnsetEnv }),
  ...(o.skipProcessQuotes === undefined ? {} : { skipProcessQuotes: o.skipProcessQuotes }),
});

/** Expand variables and remove quotes/escapes in one word (BuildKit ProcessWord). */
export function expandWord(word: string, env: EnvSource, options: ExpandOptions = {}): string {
  return run(word, env, lexOptions(options)).result;
}

/** Expand, then split into words on unquoted whitespace (BuildKit ProcessWords). */
export function expandWords(word: string, env: EnvSource, options: ExpandOptions = {}): string[] {
  return run(word, env, lexOptions(options)).words;
}

/**
 * Expand and report which variables were used (found) and which were referenced but unset:
 * the builder needs this for cache keys and the unused-build-arg warning.
 */
export function expandWordWithMatches(word: string, env: EnvSource, options: ExpandOptions = {}): ExpandResult {
  return run(word, env, lexOptions(options));
}
