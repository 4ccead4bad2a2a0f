/**
 * Dispatch-time expansion over the stage's build env (ARGs and ENV, whichever came last wins, as
 * in BuildKit), recording every variable a step reads so the cache key and the unused-build-arg
 * warning see exactly what it consumed.
 */
import { DockerfileError } from '../parser/errors.js';
import { expandWordWithMatches, expandWords, type ExpandOptions } from '../parser/shell/index.js';
import type { Location } from '../parser/types.js';

export class Expander {
  readonly used = new Set<string>();
  readonly #env: Map<string, string>;
  readonly #escape: '\\' | '`';
  readonly #location: Location;

  /** `env`: the stage's build env (state.ts buildEnv). */
  constructor(env: Map<string, string>, escape: '\\' | '`', location: Location) {
    this.#env = env;
    this.#escape = escape;
    this.#location = location;
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
      const r = expandWordWithMatches(text, this.#env, options);
      for (const m of r.matched) this.used.add(m);
      return r.result;
    } catch (err) {
      throw located(err, this.#location);
    }
  }

  words(text: string): string[] {
    try {
      this.word(text);
      return expandWords(text, this.#env, { escape: this.#escape });
    } catch (err) {
      throw located(err, this.#location);
    }
  }
}

function located(err: unknown, loc: Location): unknown {
  if (err instanceof DockerfileError) return err.withLocation({ file: loc.file, line: loc.startLine, endLine: loc.endLine });
  return err;
}
