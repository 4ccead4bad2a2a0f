/**
 * Terminal progress: one ora spinner block listing every running step with its elapsed time and,
 * under the newest step with output, the live tail of that output. Finished steps become permanent
 * lines above it (✔ … CACHED, ✔ … 1.2s 4.26MB, ✖ … ERROR) — ora's stream hook clears and redraws the
 * spinner around them — and a summary closes the build. ora is loaded lazily so non-tty runs never
 * pay for it; `finish()` stops the spinner, which also shows the cursor again.
 */
import type { BuildEvent } from '../../builder/events.js';
import { humanSize } from '../format/units.js';

type Spinner = { text: string; isSpinning: boolean; spinner: { frames: string[]; interval?: number }; start(): Spinner; stop(): Spinner };

const TAIL_LINES = 3;

export async function ttyRenderer(stream: NodeJS.WriteStream): Promise<{ onEvent: (e: BuildEvent) => void; finish(): void }> {
  const { default: ora } = await import('ora');
  const spinner: Spinner = ora({ stream, text: '', discardStdin: false });
  const running = new Map<number, { title: string; start: number; tail: string[] }>();
  const titles = new Map<number, string>();
  let lastWithOutput: number | undefined;
  let cached = 0;
  let built = 0;
  const started = Date.now();
  const width = (): number => Math.max(20, (stream.columns || 80) - 4);
  const cut = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

  const render = (): void => {
    if (running.size === 0) {
      if (spinner.isSpinning) spinner.stop();
      return;
    }
    const lines: string[] = [];
    let first = true;
    // ora draws the frame of the first line; the other running steps get the same animation by hand.
    const { frames, interval = 80 } = spinner.spinner;
    const frame = frames[Math.floor(Date.now() / interval) % frames.length] ?? '-';
    for (const [id, s] of running) {
      const secs = ((Date.now() - s.start) / 1000).toFixed(1);
      lines.push(`${first ? '' : `${frame} `}${cut(s.title, width() - secs.length - 6)} ${secs}s`);
      first = false;
      if (id === lastWithOutput) for (const l of s.tail.slice(-TAIL_LINES)) lines.push(`    ${cut(l, width() - 4)}`);
    }
    spinner.text = lines.join('\n');
    if (!spinner.isSpinning) spinner.start();
  };
  const settle = (id: number, line: string): void => {
    running.delete(id);
    if (lastWithOutput === id) lastWithOutput = undefined;
    if (running.size === 0 && spinner.isSpinning) spinner.stop();
    stream.write(`${line}\n`);
    render();
  };

  const timer = setInterval(render, 100);
  timer.unref();
  return {
    onEvent(e) {
      switch (e.type) {
        case 'step-start': {
          const title = `[${e.stage}${e.stage === '' ? '' : ' '}${e.index}/${e.total}] ${e.text}`;
          titles.set(e.id, title);
          running.set(e.id, { title, start: Date.now(), tail: [] });
          render();
          break;
        }
        case 'step-log': {
          const s = running.get(e.id);
          if (s === undefined) break;
          s.tail.push(...e.data.split(/\r?\n/).filter((l) => l !== ''));
          s.tail.splice(0, Math.max(0, s.tail.length - TAIL_LINES));
          lastWithOutput = e.id;
          render();
          break;
        }
        case 'step-cached':
          cached++;
          settle(e.id, `✔ ${titles.get(e.id) ?? ''} CACHED`);
          break;
        case 'step-done':
          // FROM resolves a base; the summary counts the steps that did work.
          if (!(titles.get(e.id) ?? '').includes('] FROM ')) built++;
          settle(e.id, `✔ ${titles.get(e.id) ?? ''} ${(e.durationMs / 1000).toFixed(1)}s${e.layerSize !== undefined ? ` ${humanSize(e.layerSize)}` : ''}`);
          break;
        case 'step-error':
          settle(e.id, `✖ ${titles.get(e.id) ?? ''} ERROR`);
          break;
        case 'warning':
          stream.write(`⚠ ${e.message}\n`);
          break;
        case 'build-done':
          running.clear();
          if (spinner.isSpinning) spinner.stop();
          stream.write(`\nBuilt ${e.imageId.slice(7, 19)} in ${((Date.now() - started) / 1000).toFixed(1)}s: ${built} steps run, ${cached} cached${e.tags.length > 0 ? `; tagged ${e.tags.join(', ')}` : ''}\n`);
          break;
        default:
          break;
      }
    },
    finish() {
      clearInterval(timer);
      running.clear();
      if (spinner.isSpinning) spinner.stop();
    },
  };
}

/** Sizes as docker prints them (1000-based, 3 significant digits: "4.26MB"). */
export function formatBytes(n: number): string {
  return humanSize(n);
}
