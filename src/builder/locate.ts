/**
 * Two small build-loop helpers: Dockerfile locations attached to step errors (so the CLI can
 * print `--> Dockerfile:12` and the line, like BuildKit), and a counting wrapper around the
 * context stat memo that proves a warm build read no file contents.
 */
import { DockerfileError } from '../parser/index.js';
import type { Location } from '../parser/types.js';
import type { StatMemo } from './context.js';

export interface StepLocation {
  file: string;
  line: number;
  endLine: number;
  /** The instruction's first source line as written. */
  excerpt: string;
}

/**
 * Gives `err` the location of the instruction that failed, unless it already has one. Errors
 * keep their class and code (exit status); the fields are the ones cli/exit.ts prints.
 */
export function attachLocation(err: unknown, ins: { location: Location }, lines: string[]): unknown {
  const loc = ins.location;
  const excerpt = (lines[loc.startLine - 1] ?? '').replace(/\r$/, '');
  if (err instanceof DockerfileError) {
    if (err.line !== 0 && err.excerpt !== undefined) return err;
    if (err.line !== 0) return Object.defineProperty(err, 'excerpt', { value: (lines[err.line - 1] ?? '').replace(/\r$/, ''), enumerable: true });
    return err.withLocation({ file: loc.file, line: loc.startLine, endLine: loc.endLine, excerpt });
  }
  if (!(err instanceof Error) || 'line' in err) return err;
  const where: StepLocation = { file: loc.file, line: loc.startLine, endLine: loc.endLine, excerpt };
  for (const [k, v] of Object.entries(where)) Object.defineProperty(err, k, { value: v, enumerable: true });
  return err;
}

export function stepLocationOf(err: unknown): StepLocation | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as Partial<StepLocation>;
  if (typeof e.file !== 'string' || typeof e.line !== 'number' || typeof e.excerpt !== 'string') return undefined;
  return { file: e.file, line: e.line, endLine: e.endLine ?? e.line, excerpt: e.excerpt };
}

export interface ContextStats {
  /** Context files whose contents were read and hashed. */
  filesRead: number;
  /** Context files whose digest came from the stat memo (no read). */
  memoHits: number;
}

/** Every memo miss is followed by a read-and-hash and a `set`, so `set` counts file reads. */
export class CountingMemo implements StatMemo {
  readonly #inner: StatMemo;
  #reads = 0;
  #hits = 0;

  constructor(inner: StatMemo) {
    this.#inner = inner;
  }

  get(key: string): string | undefined {
    const v = this.#inner.get(key);
    if (v !== undefined) this.#hits++;
    return v;
  }

  set(key: string, digest: string): void {
    this.#reads++;
    this.#inner.set(key, digest);
  }

  stats(): ContextStats {
    return { filesRead: this.#reads, memoHits: this.#hits };
  }
}
