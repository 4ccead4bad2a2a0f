/**
 * Push/pull progress for the CLI: a tracker that turns `TransferEvent`s into per-layer bytes and
 * layers done, and renderers for it — `plain` (docker's non-tty lines: `<12 hex>: Pushed`),
 * `json` (one object per line), `tty` (one live ora line with bytes, rate and layers done,
 * cleared at the end) and `quiet`.
 */
import type { Digest } from '../image/digest.js';
import { RegistryError } from './errors.js';
import type { TransferEvent } from './types.js';

export type ProgressMode = 'plain' | 'json' | 'tty' | 'quiet';
export type TransferAction = 'push' | 'pull';

export interface TransferProgress {
  /** Pass to pullImage/pushImage as `onProgress`. */
  onProgress(e: TransferEvent): void;
  /**
   * The layers of the image (others, like the config, are not shown), as they become known;
   * `count` is the number there will be in the end (default: this many).
   */
  setLayers(layers: { digest: Digest; size: number }[], count?: number): void;
  /** Stop live output; the screen is left with finished lines only. */
  finish(): void;
}

interface LayerState {
  bytes: number;
  total: number;
  done: boolean;
}

const WORDS: Record<TransferAction, Partial<Record<TransferEvent['phase'], string>>> = {
  push: { start: 'Preparing', done: 'Pushed', exists: 'Layer already exists', mounted: 'Mounted from another repository' },
  pull: { start: 'Pulling fs layer', done: 'Pull complete', exists: 'Already exists' },
};

/** Wrap an onProgress so every event also carries layers done / layers in all (the config is not a layer). */
export function withLayerCounts(layers: Digest[], on: ((e: TransferEvent) => void) | undefined): ((e: TransferEvent) => void) | undefined {
  if (on === undefined) return undefined;
  const all = new Set(layers);
  const done = new Set<Digest>();
  return (e) => {
    if (all.has(e.digest) && (e.phase === 'done' || e.phase === 'exists' || e.phase === 'mounted')) done.add(e.digest);
    on({ ...e, layersDone: done.size, layers: all.size });
  };
}

export function parseProgressMode(text: string | undefined, isTty: boolean): ProgressMode {
  const mode = text ?? 'auto';
  if (mode === 'auto') return isTty ? 'tty' : 'plain';
  if (mode === 'plain' || mode === 'json' || mode === 'tty' || mode === 'quiet') return mode;
  throw new RegistryError(`unknown progress mode ${JSON.stringify(mode)}`, { hint: 'use auto, plain, json, tty or quiet' });
}

export function formatSize(n: number): string {
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

/** Aggregated state shared by every renderer. */
class Tracker {
  readonly layers = new Map<Digest, LayerState>();
  known: Set<Digest> | undefined;
  count: number | undefined;
  readonly started = Date.now();

  /** Returns the layer's state when the event is about a layer and changes something. */
  apply(e: TransferEvent): LayerState | undefined {
    if (this.known !== undefined && !this.known.has(e.digest)) return undefined;
    let s = this.layers.get(e.digest);
    if (s === undefined) this.layers.set(e.digest, (s = { bytes: 0, total: e.total, done: false }));
    // A blob already finished stays finished (a later existence check reports "exists" again).
    if (s.done) return undefined;
    s.total = e.total;
    s.bytes = e.phase === 'start' ? 0 : e.bytes;
    s.done = e.phase === 'done' || e.phase === 'exists' || e.phase === 'mounted';
    return s;
  }

  totals(): { bytes: number; total: number; done: number; count: number } {
    let bytes = 0;
    let total = 0;
    let done = 0;
    for (const s of this.layers.values()) {
      bytes += s.bytes;
      total += s.total;
      if (s.done) done++;
    }
    return { bytes, total, done, count: Math.max(this.count ?? 0, this.known?.size ?? this.layers.size) };
  }
}

export async function transferProgress(mode: ProgressMode, action: TransferAction, stream: NodeJS.WritableStream & { columns?: number }): Promise<TransferProgress> {
  const t = new Tracker();
  const write = (s: string): void => void stream.write(s);
  const setLayers = (layers: { digest: Digest; size: number }[], count?: number): void => {
    t.known = new Set(layers.map((l) => l.digest));
    t.count = count;
    for (const l of layers) if (!t.layers.has(l.digest)) t.layers.set(l.digest, { bytes: 0, total: l.size, done: false });
  };
  const short = (d: Digest): string => d.slice(7, 19);
  if (mode === 'quiet') return { onProgress: () => undefined, setLayers, finish: () => undefined };
  if (mode === 'plain') {
    return {
      onProgress(e) {
        if (t.apply(e) === undefined) return;
        const word = WORDS[action][e.phase];
        if (word !== undefined) write(`${short(e.digest)}: ${word}\n`);
      },
      setLayers,
      finish: () => undefined,
    };
  }
  if (mode === 'json') {
    const lastProgress = new Map<Digest, number>();
    return {
      onProgress(e) {
        const s = t.apply(e);
        if (s === undefined) return;
        // Byte counts at most every 500 ms per layer; phase changes always.
        if (e.phase === 'progress') {
          const now = Date.now();
          if (now - (lastProgress.get(e.digest) ?? 0) < 500) return;
          lastProgress.set(e.digest, now);
        }
        const sum = t.totals();
        write(`${JSON.stringify({ time: new Date().toISOString(), action, id: short(e.digest), digest: e.digest, phase: e.phase, bytes: s.bytes, total: s.total, layersDone: sum.done, layers: sum.count })}\n`);
      },
      setLayers,
      finish: () => undefined,
    };
  }
  const { default: ora } = await import('ora');
  const spinner = ora({ stream: stream, text: `${action === 'push' ? 'Pushing' : 'Pulling'}…` }).start();
  const render = (): void => {
    const sum = t.totals();
    const secs = Math.max((Date.now() - t.started) / 1000, 0.001);
    const verb = action === 'push' ? 'Pushing' : 'Pulling';
    spinner.text = `${verb} ${sum.done}/${sum.count} layers  ${formatSize(sum.bytes)}/${formatSize(sum.total)}  ${formatSize(Math.round(sum.bytes / secs))}/s`;
  };
  const timer = setInterval(render, 200);
  timer.unref();
  return {
    onProgress(e) {
      if (t.apply(e) === undefined) return;
      if (e.phase !== 'progress' && e.phase !== 'start') {
        // Finished layers become permanent lines above the live one.
        spinner.stopAndPersist({ symbol: '✔', text: `${short(e.digest)} ${WORDS[action][e.phase] ?? e.phase} ${formatSize(e.total)}` });
        spinner.start();
      }
      render();
    },
    setLayers,
    finish() {
      clearInterval(timer);
      spinner.stop();
    },
  };
}
