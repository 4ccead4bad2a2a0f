/**
 * Per-instruction dispatch. `dispatch` applies the deterministic config edits at once and, for
 * steps that make a layer (RUN, COPY, ADD, WORKDIR), returns the cache inputs and an `apply`
 * that produces a StepDelta: the layer (if any) and the history entry. The loop in execute.ts
 * either runs `apply` or restores the delta from the cache.
 */
import { posix } from 'node:path';
import type { HistoryEntry, Platform } from '../image/index.js';
import { MediaType } from '../image/index.js';
import { commitLayer } from '../layers/index.js';
import type { Instruction } from '../parser/types.js';
import type { Store } from '../store/index.js';
import type { CacheInputs } from './cachekey.js';
import type { BuildContext } from './context.js';
import { Expander } from './expand.js';
import * as meta from './meta.js';
import { prepareCopy } from './step-copy.js';
import { prepareRun } from './step-run.js';
import { prepareWorkdir } from './step-workdir.js';
import { buildEnv, DEFAULT_PATH, UNSET_ARG, type LayerRef, type StageState } from './state.js';
import { ownValue } from '../util/own.js';

/** A `--secret` source: a file path, or its value (an environment variable's). */
export type SecretSource = string | { value: string | Uint8Array };

export interface StepEnv {
  store: Store;
  context: BuildContext;
  platform: Platform;
  escape: '\\' | '`';
  /** Values of ARGs declared before the first FROM (defaults overridden by --build-arg). */
  metaArgs: Map<string, string>;
  buildArgs: Record<string, string>;
  stageState(ref: string): Promise<StageState>;
  network: 'host' | 'none';
  limits: { memoryBytes?: number; cpus?: number; pids?: number };
  secrets: Record<string, SecretSource>;
  /** `--ssh`: by id, an agent socket or private key files, for RUN --mount=type=ssh. */
  ssh?: Record<string, string[]>;
  sourceDateEpoch?: number;
  /** --no-cache for this stage: steps rebuild from scratch (COPY reuses no earlier snapshot). */
  noCache?: boolean;
  signal?: AbortSignal;
  onLog?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** CMD set earlier in this stage: ENTRYPOINT must not reset it. */
  cmdSetInStage: boolean;
}

export interface StepDelta {
  layer?: LayerRef;
  history: HistoryEntry;
  layerSize?: number;
}

export interface Prepared {
  state: StageState;
  inputs?: CacheInputs;
  apply?: () => Promise<StepDelta>;
}

const LAYER_KINDS = new Set(['RUN', 'COPY', 'ADD', 'WORKDIR']);

/** BuildKit shows a progress vertex only for steps that can make a layer. */
export function isVisibleStep(ins: Instruction): boolean {
  return LAYER_KINDS.has(ins.kind);
}

export function applyDelta(state: StageState, delta: StepDelta, key: string): StageState {
  if (delta.layer !== undefined) {
    state.layers.push(delta.layer);
    state.config.rootfs.diff_ids.push(delta.layer.diffId);
  }
  (state.config.history ??= []).push(delta.history);
  return { ...state, key };
}

export function historyEntry(createdBy: string, env: StepEnv, emptyLayer: boolean): HistoryEntry {
  const created = env.sourceDateEpoch !== undefined ? new Date(env.sourceDateEpoch * 1000).toISOString() : new Date().toISOString();
  return { created, created_by: createdBy, comment: 'buildkit.dockerfile.v0', ...(emptyLayer ? { empty_layer: true } : {}) };
}

export async function dispatch(ins: Instruction, state: StageState, env: StepEnv): Promise<Prepared> {
  // The env is made on the first expansion that needs one; ARG sets variables while it expands,
  // so its expansions all see the env from before the instruction, as BuildKit's do.
  const x = new Expander(ins.kind === 'ARG' ? buildEnv(state) : () => buildEnv(state), env.escape, ins.location);
  const record = (createdBy: string): Prepared => {
    (state.config.history ??= []).push(historyEntry(createdBy, env, true));
    return { state };
  };
  const c = state.config;
  switch (ins.kind) {
    case 'RUN':
      return prepareRun(ins, state, env, x);
    case 'COPY':
    case 'ADD':
      return prepareCopy(ins, state, env, x);
    case 'WORKDIR':
      return prepareWorkdir(ins, state, env, x);
    case 'ENV': {
      const pairs = ins.pairs.map((p) => ({ key: x.word(p.key), value: x.word(p.value) }));
      for (const p of pairs) state.argsOverEnv.delete(p.key);
      return record(meta.applyEnv(c, pairs));
    }
    case 'LABEL':
      return record(meta.applyLabel(c, ins.pairs.map((p) => ({ key: x.word(p.key), value: x.word(p.value) }))));
    case 'EXPOSE':
      return record(meta.applyExpose(c, ins.ports.map((p) => x.word(p))));
    case 'VOLUME':
      return record(meta.applyVolume(c, ins.paths.map((p) => x.word(p))));
    case 'USER':
      return record(meta.applyUser(c, x.word(ins.user)));
    case 'STOPSIGNAL':
      return record(meta.applyStopSignal(c, x.word(ins.signal)));
    case 'MAINTAINER':
      return record(meta.applyMaintainer(c, ins.name));
    case 'ONBUILD':
      meta.applyOnbuild(c, ins.expression);
      return { state };
    case 'SHELL':
      return record(meta.applyShell(c, ins.command));
    case 'CMD': {
      env.cmdSetInStage = true;
      return record(meta.applyCmd(c, meta.commandArgs(ins.form, ins.command, shellOf(state))));
    }
    case 'ENTRYPOINT':
      return record(meta.applyEntrypoint(c, meta.commandArgs(ins.form, ins.command, shellOf(state)), env.cmdSetInStage));
    case 'HEALTHCHECK': {
      if (ins.test === 'NONE') return record(meta.applyHealthcheck(c, { Test: ['NONE'] }));
      // BuildKit: exec form is ["CMD", args...], shell form ["CMD-SHELL", line].
      const test = ins.test.form === 'exec' ? ['CMD', ...ins.test.command] : ['CMD-SHELL', ins.test.command];
      const d = (v: string | undefined): number | undefined => (v === undefined ? undefined : meta.parseGoDuration(v));
      const health = {
        Test: test,
        ...opt('Interval', d(ins.interval)),
        ...opt('Timeout', d(ins.timeout)),
        ...opt('StartPeriod', d(ins.startPeriod)),
        ...opt('StartInterval', d(ins.startInterval)),
        ...opt('Retries', ins.retries),
      };
      return record(meta.applyHealthcheck(c, health));
    }
    case 'ARG': {
      // --build-arg, else the expanded default, else a global ARG of the same name, else unset.
      const shown: string[] = [];
      for (const a of ins.args) {
        const key = a.key;
        // Own keys only: `ARG constructor` must not find Object.prototype's.
        const given = ownValue(env.buildArgs, key);
        const value = given ?? (a.value !== undefined ? x.word(a.value) : env.metaArgs.get(key));
        // A re-declared ARG keeps its first place (BuildKit's runCommandString and env list).
        state.args.set(key, value ?? UNSET_ARG);
        if (value !== undefined) state.argsOverEnv.add(key);
        shown.push(value === undefined ? key : `${key}=${value}`);
      }
      return record(`ARG ${shown.join(' ')}`);
    }
    case 'FROM':
      return { state };
  }
}

function opt<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

export function shellOf(state: StageState): string[] {
  return state.config.config?.Shell ?? ['/bin/sh', '-c'];
}

/** Every dispatched stage has PATH: BuildKit appends the default when the base image lacks it. */
export function ensurePath(state: StageState): void {
  const env = (state.config.config ??= {}).Env ?? [];
  if (!env.some((e) => e.startsWith('PATH='))) state.config.config.Env = [...env, `PATH=${DEFAULT_PATH}`];
}


/** WORKDIR-relative destination, keeping a trailing slash (it means "a directory"). */
export function resolveDest(state: StageState, dest: string): { path: string; isDir: boolean } {
  const wd = state.config.config?.WorkingDir ?? '/';
  const isDir = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  const path = posix.resolve(wd === '' ? '/' : wd, dest);
  return { path, isDir };
}

/**
 * The state's snapshot dirs as overlay lowerdirs, top-most first. A layer seen again lower down
 * (two RUNs that changed nothing give the same empty layer) is dropped: overlayfs refuses the
 * same dir twice (ELOOP), and the top-most copy already shows all of its entries.
 */
export function lowerDirsOf(state: StageState, store: Store): string[] {
  return [...new Set([...state.layers].reverse().map((l) => store.snapshots.path(l.diffId)))];
}

/**
 * The common end of every layer-making step: tar the dir (an overlay upper dir, or a staged one
 * with no lowerdirs), store it uncompressed, adopt the dir as the layer's snapshot.
 */
export async function commitStepLayer(env: StepEnv, dir: string, lowerDirs: string[], createdBy: string): Promise<StepDelta> {
  const layer = await commitLayer(env.store, dir, lowerDirs, {
    ...(env.sourceDateEpoch !== undefined ? { sourceDateEpoch: env.sourceDateEpoch } : {}),
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
  });
  await env.store.snapshots.adopt(layer.diffId, dir);
  return {
    layer: { diffId: layer.diffId, descriptor: { mediaType: MediaType.OciLayer, digest: layer.diffId, size: layer.size } },
    history: historyEntry(createdBy, env, false),
    layerSize: layer.size,
  };
}
