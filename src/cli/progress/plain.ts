/**
 * BuildKit's plain progress format: `#N [stage i/n] INSTRUCTION`, output lines prefixed `#N`
 * with the elapsed seconds, then `#N CACHED`, `#N DONE 1.2s` or `#N ERROR: ...`, blank line between steps.
 */
import type { BuildEvent } from '../../builder/events.js';

export function plainRenderer(write: (s: string) => void, options: { explainCache?: boolean } = {}): (e: BuildEvent) => void {
  const started = new Map<number, number>();
  return (e) => {
    switch (e.type) {
      case 'step-start':
        started.set(e.id, Date.now());
        write(`#${e.id} [${e.stage}${e.stage === '' ? '' : ' '}${e.index}/${e.total}] ${e.text}\n`);
        break;
      case 'step-log': {
        const t = ((Date.now() - (started.get(e.id) ?? Date.now())) / 1000).toFixed(3);
        for (const line of e.data.replace(/\n$/, '').split('\n')) write(`#${e.id} ${t} ${line}\n`);
        break;
      }
      case 'step-cached':
        write(`#${e.id} CACHED\n\n`);
        break;
      case 'step-miss':
        if (options.explainCache === true) for (const r of e.reasons) write(`#${e.id} cache miss: ${r}\n`);
        break;
      case 'step-done':
        write(`#${e.id} DONE ${(e.durationMs / 1000).toFixed(1)}s\n\n`);
        break;
      case 'step-error':
        write(`#${e.id} ERROR: ${e.message}\n\n`);
        break;
      case 'warning':
        write(`WARNING: ${e.message}\n`);
        break;
      case 'pull':
        if (e.phase === 'done') write(`#0 pulled ${e.digest} ${e.total} bytes\n`);
        break;
      case 'build-done':
        write(`#${'done'} writing image ${e.imageId}${e.tags.length > 0 ? ` naming to ${e.tags.join(', ')}` : ''}\n`);
        break;
    }
  };
}

export function jsonRenderer(write: (s: string) => void): (e: BuildEvent) => void {
  return (e) => write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
}
