/**
 * Columns and source excerpts for DockerfileErrors. Errors are raised where the text is no longer
 * at hand (flag tables, the shell lexer, planning); this puts the caret on the offending token.
 */
import { DockerfileError } from './errors.js';
import type { Dockerfile } from './types.js';

/** The token an error message is about, as it appears on the line (first match wins). */
const needles: [RegExp, (m: RegExpExecArray) => string][] = [
  [/^unknown flag: (.+)$/, (m) => `--${m[1] ?? ''}`],
  [/flag(?: specified)?: (\S+)$/, (m) => `--${m[1] ?? ''}`],
  [/^expecting boolean value for flag (\S+),/, (m) => `--${m[1] ?? ''}`],
  [/^unsupported network mode/, () => '--network'],
  [/^unsupported security mode/, () => '--security'],
  [/JSON array/, () => '['],
  [/heredoc/, () => '<<'],
  [/^invalid escape token '(.*)'/, (m) => `=${m[1] ?? ''}`],
  [/^only one (\w+) parser directive/, (m) => m[1] ?? ''],
  [/^failed to process "(.*)": /, (m) => m[1] ?? ''],
  [/^invalid name for build stage: "(.*)"/, (m) => m[1] ?? ''],
  [/^invalid stage index (\S+)/, (m) => `--from=${m[1] ?? ''}`],
  [/^circular dependency detected on stage: (\S+)/, (m) => m[1] ?? ''],
  [/^base name \((.*)\) should not be blank/, (m) => m[1] ?? ''],
  [/^failed to parse platform/, () => '--platform'],
  [/^Interval "([\w-]+)"/, (m) => `--${m[1] ?? ''}`],
  [/^--retries|^strconv\.ParseInt/, () => '--retries'],
];

/** 1-based column of the token `message` is about on `line`; the first non-blank otherwise. */
export function columnFor(message: string, line: string, flag?: string): number {
  const at = flag === undefined ? -1 : line.indexOf(`--${flag}`);
  if (at >= 0) return at + 1;
  for (const [re, needle] of needles) {
    const m = re.exec(message);
    if (m === null) continue;
    const n = needle(m);
    const i = n === '' ? -1 : line.indexOf(n);
    // `=x` points at the value, not the equals sign.
    if (i >= 0) return i + 1 + (n.startsWith('=') ? 1 : 0);
    break;
  }
  const indent = /^[\t ]*/.exec(line)?.[0].length ?? 0;
  return indent + 1;
}

/** Fill in excerpt (the first source line of the error) and column, where missing. */
export function withSource(err: DockerfileError, text: string | readonly string[]): DockerfileError {
  if (err.line === 0 || (err.excerpt !== undefined && err.column !== undefined)) return err;
  const lines = typeof text === 'string' ? text.split('\n') : text;
  const src = (lines[err.line - 1] ?? '').replace(/\r$/, '');
  const excerpt = err.excerpt ?? src;
  return err.with({ excerpt, column: err.column ?? columnFor(err.details().message, src) });
}

const sources = new WeakMap<Dockerfile, readonly string[]>();

/** Remember a parsed file's text so later errors (planning, dispatch) can be located in it. */
export function rememberSource(df: Dockerfile, text: string): void {
  sources.set(df, text.split('\n'));
}

/** A DockerfileError about `df` with excerpt and column; anything else unchanged. */
export function locateError(err: unknown, df: Dockerfile): unknown {
  const lines = sources.get(df);
  if (!(err instanceof DockerfileError) || lines === undefined) return err;
  return withSource(err, lines);
}
