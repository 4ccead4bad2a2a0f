/**
 * BuildKit's plain progress format (progressui's plain printer), e.g.
 *   #5 [build 2/4] RUN make
 *   #5 0.123 compiling…            ← output lines: seconds since the step started, 3 decimals
 *   #5 DONE 1.2s                   ← or `#5 CACHED`, or `#5 ERROR: <message>`; a blank line after each
 * A failed step is followed by BuildKit's `------` block with the tail of its output; the final
 * image is reported as an `exporting to image` vertex. Partial output lines are held until their
 * newline (or the step's end) so a line is never split across two prefixes.
 */
import type { BuildEvent } from '../../builder/events.js';
import { humanSize } from '../format/units.js';

export interface PlainOptions {
  explainCache?: boolean;
  /** Clock in ms (tests pass a fake one). */
  now?: () => number;
}

const ERROR_TAIL = 6;

export function plainRenderer(write: (s: string) => void, options: PlainOptions = {}): (e: BuildEvent) => void {
  const now = options.now ?? Date.now;
  const steps = new Map<number, { title: string; start: number; partial: string; lines: string[] }>();
  let lastId = 0;
  let lastFrom = 0;
  const stamp = (id: number): string => ((now() - (steps.get(id)?.start ?? now())) / 1000).toFixed(3);
  const flush = (id: number): void => {
    const s = steps.get(id);
    if (s === undefined || s.partial === '') return;
    emitLine(id, s.partial);
    s.partial = '';
  };
  const emitLine = (id: number, line: string): void => {
    const t = stamp(id);
    steps.get(id)?.lines.push(`${t} ${line}`);
    write(`#${id} ${t} ${line}\n`);
  };
  return (e) => {
    switch (e.type) {
      case 'step-start': {
        const title = `[${e.stage}${e.stage === '' ? '' : ' '}${e.index}/${e.total}] ${e.text}`;
        steps.set(e.id, { title, start: now(), partial: '', lines: [] });
        lastId = Math.max(lastId, e.id);
        if (e.text.startsWith('FROM ')) lastFrom = e.id;
        write(`#${e.id} ${title}\n`);
        break;
      }
      case 'step-log': {
        const s = steps.get(e.id);
        if (s === undefined) break;
        const parts = (s.partial + e.data).split(/\r?\n/);
        s.partial = parts.pop() ?? '';
        for (const line of parts) emitLine(e.id, line);
        break;
      }
      case 'step-cached':
        write(`#${e.id} CACHED\n\n`);
        break;
      case 'step-miss':
        if (options.explainCache === true) for (const r of e.reasons) write(`#${e.id} cache miss: ${r}\n`);
        break;
      case 'step-done':
        flush(e.id);
        write(`#${e.id} DONE ${(e.durationMs / 1000).toFixed(1)}s\n\n`);
        break;
      case 'step-error': {
        flush(e.id);
        write(`#${e.id} ERROR: ${e.message}\n`);
        const s = steps.get(e.id);
        if (s !== undefined) write(`------\n > ${s.title}:\n${s.lines.slice(-ERROR_TAIL).map((l) => `${l}\n`).join('')}------\n`);
        write('\n');
        break;
      }
      case 'warning':
        write(`WARNING: ${e.message}\n`);
        break;
      case 'pull':
        if (e.phase === 'done' || e.phase === 'exists') write(`#${lastFrom} ${e.digest} ${humanSize(e.total)} / ${humanSize(e.total)} done\n`);
        break;
      case 'build-done': {
        const id = ++lastId;
        write(`#${id} exporting to image\n#${id} writing image ${e.imageId} done\n`);
        for (const t of e.tags) write(`#${id} naming to ${t} done\n`);
        write(`#${id} DONE 0.0s\n`);
        break;
      }
    }
  };
}

/** One JSON object per event and line: `{"time": ISO-8601, ...event}`. */
export function jsonRenderer(write: (s: string) => void, options: { now?: () => number } = {}): (e: BuildEvent) => void {
  const now = options.now ?? Date.now;
  return (e) => write(`${JSON.stringify({ time: new Date(now()).toISOString(), ...e })}\n`);
}
