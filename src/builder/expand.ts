/**
 * Dispatch-time expansion over the stage's build env (ARGs and ENV, whichever came last wins, as
 * in BuildKit), recording every variable a step reads so the cache key and the unused-build-arg
 * warning see exactly what it consumed.
 */
import { DockerfileError } from '../parser/errors.js';
import { expandWordWithMatches, expandWords, type ExpandOptions } from '../parser/shell/index.js';
import type { Location } from '../parser/types.js';

const NO_VARS: ReadonlyMap<string, string> = new Map();

export class Expander {
  readonly used = new Set<string>();
  #env: Map<string, string> | (() => Map<string, string>);
  readonly #escape: '\\' | '`';
  readonly #location: Location;

  /**
   * `env`: the stage's build env (state.ts buildEnv), or a function that makes it, called on the
   * first expansion: building it is linear in the stage's ENVs, for every step.
   */
  constructor(env: Map<string, string> | (() => Map<string, string>), escape: '\\' | '`', location: Location) {
    this.#env = env;
    this.#escape = escape;
    this.#location = location;
  }

  #vars(): Map<string, string> {
    if (typeof this.#env === 'function') this.#env = this.#env();
    return this.#env;
  }

  word(text: string): string {
    return this.#expand(text, { escape: this.#escape });
  }

  /**
   * The body of a COPY/ADD heredoc whose delimiter is unquoted (BuildKit's ExpandRaw): variables
   * expand, quotes stay as written, and a backslash (whatever the escape directive says) keeps the
   * next character literal.
   */
  raw(text: string): string {
    return this.#expand(text, { escape: '\\', skipProcessQuotes: true });
  }

  #expand(text: string, options: ExpandOptions): string {
    try {
      // Only a `$` reads a variable: a word without one needs no env (most ENV and LABEL words).
      const r = expandWordWithMatches(text, text.includes('$') ? this.#vars() : NO_VARS, options);
      for (const m of r.matched) this.used.add(m);
      return r.result;
    } catch (err) {
      throw located(err, this.#location);
    }
  }

  words(text: string): string[] {
    try {
      this.word(text);
      return expandWords(text, text.includes('$') ? this.#vars() : NO_VARS, { escape: this.#escape });
    } catch (err) {
      throw located(err, this.#location);
    }
  }
}

function located(err: unknown, loc: Location): unknown {
  if (err instanceof DockerfileError) return err.withLocation({ file: loc.file, line: loc.startLine, endLine: loc.endLine });
  return err;
}
