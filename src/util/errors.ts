/**
 * Every failure tsbuild reports is a TsbuildError with a stable `code`. The CLI is the one place
 * that turns codes into messages and exit statuses; library callers switch on `code`.
 */
export type ErrorCode =
  | 'DOCKERFILE' // bad Dockerfile text or semantics (parser/, builder/plan)
  | 'CONTEXT' // build context problems (missing file, escape attempt)
  | 'REGISTRY' // distribution API failures
  | 'STORE' // local store corruption, missing blob, lock failure
  | 'LAYER' // hostile or malformed layer tar
  | 'SANDBOX' // namespace/mount/cgroup setup failures
  | 'RUN_FAILED' // a RUN step exited non-zero
  | 'IMAGE' // invalid image model (digest mismatch, bad media type)
  | 'REFERENCE' // unparsable image reference
  | 'USAGE' // bad command-line usage
  | 'ABORTED' // cancelled through an AbortSignal
  | 'NOT_FOUND' // a named thing (tag, image, stage) does not exist
  | 'INTERNAL';

export interface TsbuildErrorOptions {
  cause?: unknown;
  /** Extra hint shown under the message, e.g. a did-you-mean suggestion. */
  hint?: string;
}

export class TsbuildError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: TsbuildErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TsbuildError';
    this.code = code;
    this.hint = options.hint;
  }
}

export class AbortError extends TsbuildError {
  constructor(reason?: unknown) {
    super('ABORTED', 'operation aborted', { cause: reason });
    this.name = 'AbortError';
  }
}

/** Content that does not hash to the digest it was given under (a blob being stored, a download). */
export class DigestMismatchError extends TsbuildError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super('STORE', `digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

export function isTsbuildError(err: unknown): err is TsbuildError {
  return err instanceof TsbuildError;
}

/** Node system errors carry `code` as a string such as 'ENOENT'. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
