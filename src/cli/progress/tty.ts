/**
 * Terminal progress: one ora spinner for the running step with elapsed time and the live tail of
 * its output; finished steps are printed as permanent lines with CACHED marks and layer sizes;
 * a summary at the end. ora is loaded lazily so non-tty runs never pay its import cost.
 */
import type { BuildEvent } from '../../builder/events.js';

type Spinner = { text: string; start(): Spinner; stop(): Spinner; stopAndPersist(o: { symbol: string; text: string }): Spinner };

export async function ttyRenderer(stream: NodeJS.WriteStream): Promise<{ onEvent: (e: BuildEvent) => void; finish(): void }> {
  const { default: ora } = await import('ora');
  const steps = new Map<number, { text: string; start: number; tail: string[] }>();
  let spinner: Spinner | undefined;
  let current: number | undefined;
  let cached = 0;
  let built = 0;
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();

  const render = (): void => {
    if (spinner === undefined || current === undefined) return;
    const s = steps.get(current);
    if (s === undefined) return;
    const secs = ((Date.now() - s.start) / 1000).toFixed(1);
    const tail = s.tail.slice(-3).map((l) => `\n    ${l.slice(0, (stream.columns || 80) - 6)}`).join('');
    spinner.text = `${s.text} ${secs}s${tail}`;
  };
  const persist = (id: number, symbol: string, suffix: string): void => {
    const s = steps.get(id);
    if (s === undefined) return;
    if (spinner !== undefined && current === id) {
      spinner.stopAndPersist({ symbol, text: `${s.text} ${suffix}` });
      spinner = undefined;
      current = undefined;
    } else stream.write(`${symbol} ${s.text} ${suffix}\n`);
  };

  timer = setInterval(render, 100);
  timer.unref();
  return {
    onEvent(e) {
      switch (e.type) {
        case 'step-start':
          steps.set(e.id, { text: `[${e.stage}${e.stage === '' ? '' : ' '}${e.index}/${e.total}] ${e.text}`, start: Date.now(), tail: [] });
          spinner?.stop();
          current = e.id;
          spinner = ora({ stream, text: steps.get(e.id)?.text ?? '' }).start();
          break;
        case 'step-log':
          steps.get(e.id)?.tail.push(...e.data.replace(/\n$/, '').split('\n'));
          render();
          break;
        case 'step-cached':
          cached++;
          persist(e.id, '✔', 'CACHED');
          break;
        case 'step-done':
          built++;
          persist(e.id, '✔', `${(e.durationMs / 1000).toFixed(1)}s${e.layerSize !== undefined ? ` ${formatBytes(e.layerSize)}` : ''}`);
          break;
        case 'step-error':
          persist(e.id, '✖', 'ERROR');
          break;
        case 'warning':
          stream.write(`⚠ ${e.message}\n`);
          break;
        case 'build-done':
          stream.write(`\nBuilt ${e.imageId.slice(7, 19)} in ${((Date.now() - started) / 1000).toFixed(1)}s: ${built} steps run, ${cached} cached${e.tags.length > 0 ? `; tagged ${e.tags.join(', ')}` : ''}\n`);
          break;
        default:
          break;
      }
    },
    finish() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      spinner?.stop();
    },
  };
}

export function formatBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)}${units[i] ?? ''}`;
}
