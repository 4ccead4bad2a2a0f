import { TsbuildError } from '../util/errors.js';

export interface DockerfileErrorDetails {
  file?: string;
  line?: number;
  endLine?: number;
  column?: number;
  excerpt?: string;
  suggestion?: string;
  /** Advice for errors without a did-you-mean (e.g. "add a FROM line"). */
  hint?: string;
  cause?: unknown;
}

/**
 * A Dockerfile that cannot be parsed or planned. `line` is 1-based; 0 means "not tied to a line"
 * (e.g. an empty file). `suggestion` carries the did-you-mean text, also appended to the message
 * the way BuildKit does (`unknown instruction: RUNN (did you mean RUN?)`).
 */
export class DockerfileError extends TsbuildError {
  readonly file: string;
  readonly line: number;
  readonly endLine: number;
  readonly column: number | undefined;
  readonly excerpt: string | undefined;
  readonly suggestion: string | undefined;

  constructor(message: string, details: DockerfileErrorDetails = {}) {
    const full = details.suggestion === undefined ? message : `${message} (did you mean ${details.suggestion}?)`;
    super('DOCKERFILE', full, {
      cause: details.cause,
      ...(details.suggestion === undefined ? (details.hint === undefined ? {} : { hint: details.hint }) : { hint: `did you mean ${details.suggestion}?` }),
    });
    this.name = 'DockerfileError';
    this.file = details.file ?? 'Dockerfile';
    this.line = details.line ?? 0;
    this.endLine = details.endLine ?? this.line;
    this.column = details.column;
    this.excerpt = details.excerpt;
    this.suggestion = details.suggestion;
  }

  /** The details this error was made from (message without the did-you-mean suffix). */
  details(): DockerfileErrorDetails & { message: string } {
    const bare = this.suggestion === undefined ? this.message : this.message.slice(0, this.message.lastIndexOf(' (did you mean'));
    return {
      message: bare, file: this.file, line: this.line, endLine: this.endLine, cause: this.cause,
      ...(this.column === undefined ? {} : { column: this.column }),
      ...(this.excerpt === undefined ? {} : { excerpt: this.excerpt }),
      ...(this.suggestion === undefined ? {} : { suggestion: this.suggestion }),
      ...(this.suggestion === undefined && this.hint !== undefined ? { hint: this.hint } : {}),
    };
  }

  /** A copy with some details replaced. */
  with(changes: DockerfileErrorDetails): DockerfileError {
    const { message, ...d } = this.details();
    const e = new DockerfileError(message, { ...d, ...changes });
    if (this.stack !== undefined) e.stack = this.stack;
    return e;
  }

  /** Same error, with location filled in where it was missing (errors raised deep in helpers). */
  withLocation(loc: { file?: string; line: number; endLine?: number; excerpt?: string }): DockerfileError {
    if (this.line !== 0) return this;
    const bare = this.suggestion === undefined ? this.message : this.message.slice(0, this.message.lastIndexOf(' (did you mean'));
    const e = new DockerfileError(bare, {
      file: loc.file ?? this.file,
      line: loc.line,
      endLine: loc.endLine ?? loc.line,
      ...(this.column === undefined ? {} : { column: this.column }),
      ...(loc.excerpt === undefined ? {} : { excerpt: loc.excerpt }),
      ...(this.suggestion === undefined ? {} : { suggestion: this.suggestion }),
      cause: this.cause,
    });
    return e;
  }
}

export function isDockerfileError(err: unknown): err is DockerfileError {
  return err instanceof DockerfileError;
}
