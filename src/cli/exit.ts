/**
 * The one place that turns errors into messages and exit statuses. Documented in the README:
 * 0 ok · 1 build failed (RUN, COPY/context, sandbox, image) · 2 usage · 3 Dockerfile error ·
 * 4 registry/reference error · 5 not found · 6 store error · 130 interrupted.
 */
import { isTsbuildError, messageOf, type ErrorCode } from '../util/errors.js';

/** Source lines of an error's excerpt printed before the rest is summarised. */
const EXCERPT_LINES = 6;

/** Exit status per error code; the README's exit-code table is tested against this. */
export const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  RUN_FAILED: 1,
  CONTEXT: 1,
  SANDBOX: 1,
  LAYER: 1,
  IMAGE: 1,
  INTERNAL: 1,
  USAGE: 2,
  DOCKERFILE: 3,
  REGISTRY: 4,
  REFERENCE: 4,
  NOT_FOUND: 5,
  STORE: 6,
  ABORTED: 130,
};

export function exitCodeFor(err: unknown): number {
  return isTsbuildError(err) ? EXIT_CODES[err.code] : 1;
}

/** One clear message (plus the hint and, for Dockerfile errors, the line with a caret). */
export function formatError(err: unknown, debug: boolean): string {
  if (!isTsbuildError(err)) {
    return debug && err instanceof Error ? `error: ${err.stack ?? err.message}\n` : `error: ${messageOf(err)}\n`;
  }
  let out = `error: ${err.message}\n`;
  const loc = err as unknown as { file?: string; line?: number; column?: number; excerpt?: string };
  if (loc.excerpt !== undefined && loc.line !== undefined) {
    out += ` --> ${loc.file ?? 'Dockerfile'}:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}\n`;
    // An instruction can span lines (continuations, a heredoc up to the end of the file): each
    // gets its own number, the caret stays under the first, and a long tail is cut short.
    const lines = loc.excerpt.split('\n');
    const shown = lines.slice(0, EXCERPT_LINES);
    shown.forEach((text, i) => {
      out += `  ${String((loc.line ?? 0) + i).padStart(4)} | ${text}\n`;
      if (i === 0 && loc.column !== undefined) out += `       | ${' '.repeat(Math.max(0, loc.column - 1))}^\n`;
    });
    if (lines.length > shown.length) out += `       | ... ${lines.length - shown.length} more line${lines.length - shown.length === 1 ? '' : 's'}\n`;
  }
  // Parser messages may already end in their suggestion: "(did you mean RUN?)"; say it once.
  if (err.hint !== undefined && !err.message.endsWith(`(${err.hint})`)) out += `hint: ${err.hint}\n`;
  if (debug && err.stack !== undefined) out += `${err.stack}\n`;
  if (debug && err.cause instanceof Error) out += `caused by: ${err.cause.stack ?? err.cause.message}\n`;
  return out;
}
