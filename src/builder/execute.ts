/**
 * The build loop: stages in dependency order, each instruction through the cache, every step
 * reported as a BuildEvent. Steps are pure functions of (state, instruction) → state; this file
 * owns ordering, the cache protocol and events.
 */
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Digest, Platform } from '../image/index.js';
import { parseDockerfile } from '../parser/index.js';
import type { Dockerfile, Instruction, Stage } from '../parser/types.js';
import type { RegistryClient } from '../registry/index.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';
import { resolveBaseImage, ensureSnapshots } from './base.js';
import { cacheKey, explainMiss, type CacheInputs } from './cachekey.js';
import { commitImage, type CommittedImage } from './commit.js';
import { BuildContext } from './context.js';
import type { BuildEvent, EventSink } from './events.js';
import { loadIgnore } from './ignore.js';
import { planBuild, type BuildPlan, type PlannedStage } from './plan.js';
import { cloneState, emptyConfig, type StageState } from './state.js';
import { applyDelta, dispatch, ensurePath, isVisibleStep, type StepDelta, type StepEnv } from './steps.js';

export interface BuildRequest {
  contextDir: string;
  dockerfile?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  labels?: Record<string, string>;
  network?: 'host' | 'none';
  limits?: { memoryBytes?: number; cpus?: number; pids?: number };
  pull?: boolean;
  platform?: Platform;
  secrets?: Record<string, string>;
  sourceDateEpoch?: number;
}

export interface BuildDeps {
  store: Store;
  registry?: RegistryClient;
}

export interface BuildResult extends CommittedImage {
  tags: string[];
}

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export async function build(
  request: BuildRequest,
  deps: BuildDeps,
  options: { signal?: AbortSignal; onEvent?: EventSink } = {},
): Promise<BuildResult> {
  const started = Date.now();
  const emit: EventSink = options.onEvent ?? (() => undefined);
  const signal = options.signal;
  const contextDir = resolvePath(request.contextDir);
  const dockerfilePath = resolvePath(contextDir, request.dockerfile ?? 'Dockerfile');
  const text = await readFile(dockerfilePath, 'utf8').catch((err: unknown) => {
    throw new TsbuildError('NOT_FOUND', `cannot read Dockerfile ${dockerfilePath}`, { cause: err });
  });
  const df: Dockerfile = parseDockerfile(text, { file: request.dockerfile ?? 'Dockerfile' });
  const platform = request.platform ?? DEFAULT_PLATFORM;
  const plan = planBuild(df, { buildArgs: request.buildArgs ?? {}, platform, ...(request.target !== undefined ? { target: request.target } : {}) });
  // Values an in-stage `ARG NAME` (no default) inherits: meta ARGs, then the predefined platform ARGs.
  const inherited = new Map(plan.predefinedArgs);
  for (const [k, v] of plan.metaArgs) if (v !== undefined) inherited.set(k, v);
  for (const name of plan.unusedBuildArgs) emit({ type: 'warning', message: `build-arg ${name} was given but no stage consumes it` });

  await deps.store.cache.memo.load();
  const context = new BuildContext(contextDir, { ignore: await loadIgnore(dockerfilePath, contextDir), memo: deps.store.cache.memo });
  const done = new Map<number, StageState>();
  const counter = { next: 1 };
  const inflight = new Map<number, Promise<StageState>>();

  const runStage = (planned: PlannedStage): Promise<StageState> => {
    let p = inflight.get(planned.stage.index);
    if (p === undefined) {
      p = (async () => {
        // Dependencies first; independent stages run concurrently.
        await Promise.all(planned.dependencies.map((i: number) => runStage(plan.stages[i] as PlannedStage)));
        const state = await buildStage(planned, { df, plan, inherited, deps, context, done, counter, emit, platform, request, signal });
        done.set(planned.stage.index, state);
        return state;
      })();
      inflight.set(planned.stage.index, p);
    }
    return p;
  };
  const finalState = await runStage(plan.stages[plan.target] as PlannedStage);
  await deps.store.cache.memo.flush();

  const created = request.sourceDateEpoch !== undefined ? new Date(request.sourceDateEpoch * 1000).toISOString() : new Date().toISOString();
  const state = cloneState(finalState);
  if (request.labels !== undefined && Object.keys(request.labels).length > 0) {
    const cc = (state.config.config ??= {});
    cc.Labels = { ...(cc.Labels ?? {}), ...request.labels };
  }
  const image = await commitImage(deps.store, state, { created, ...(signal !== undefined ? { signal } : {}) });
  const tags = request.tags ?? [];
  for (const tag of tags) await deps.store.tags.set(tag, image.manifestDescriptor);
  emit({ type: 'build-done', imageId: image.configDigest, manifestDigest: image.manifestDigest, tags, durationMs: Date.now() - started });
  return { ...image, tags };
}

interface StageRunEnv {
  df: Dockerfile;
  plan: BuildPlan;
  inherited: Map<string, string>;
  deps: BuildDeps;
  context: BuildContext;
  done: Map<number, StageState>;
  counter: { next: number };
  emit: EventSink;
  platform: Platform;
  request: BuildRequest;
  signal: AbortSignal | undefined;
}

async function buildStage(planned: PlannedStage, env: StageRunEnv): Promise<StageState> {
  const { stage } = planned;
  const visible = stage.instructions.filter(isVisibleStep).length + 1;
  const label = env.plan.stages.length > 1 ? (stage.name ?? `stage-${stage.index}`) : '';
  let step = 1;
  const fromId = env.counter.next++;
  const fromText = `FROM ${planned.baseText}`;
  env.emit({ type: 'step-start', id: fromId, stage: label, index: step, total: visible, text: fromText });
  const t0 = Date.now();
  let state: StageState;
  try {
    state = await resolveBase(planned, env);
  } catch (err) {
    env.emit({ type: 'step-error', id: fromId, message: errorText(err) });
    throw err;
  }
  env.emit({ type: 'step-done', id: fromId, durationMs: Date.now() - t0 });
  ensurePath(state);
  const noCache = env.request.noCache === true || (env.request.noCacheFilter ?? []).some((f) => f.toLowerCase() === (stage.name ?? String(stage.index)));
  const stepEnv: StepEnv = {
    store: env.deps.store,
    context: env.context,
    platform: env.platform,
    escape: env.df.directives.escape,
    metaArgs: env.inherited,
    buildArgs: env.request.buildArgs ?? {},
    stageState: (ref: string) => stageByRef(ref, env),
    network: env.request.network ?? 'host',
    limits: env.request.limits ?? {},
    secrets: env.request.secrets ?? {},
    ...(env.request.sourceDateEpoch !== undefined ? { sourceDateEpoch: env.request.sourceDateEpoch } : {}),
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
    cmdSetInStage: false,
  };
  for (const ins of stage.instructions) {
    env.signal?.throwIfAborted();
    const visibleStep = isVisibleStep(ins);
    const id = visibleStep ? env.counter.next++ : 0;
    if (visibleStep) {
      step++;
      env.emit({ type: 'step-start', id, stage: label, index: step, total: visible, text: ins.original.replace(/\s+/g, ' ').trim() });
    }
    const started = Date.now();
    stepEnv.onLog = (stream, chunk) => env.emit({ type: 'step-log', id, stream, data: chunk.toString('utf8') });
    let outcome: StepOutcome;
    try {
      outcome = await runStep(ins, state, stepEnv, { id, noCache, emit: visibleStep ? env.emit : () => undefined, stageKey: stepIdentity(env, stage, ins) });
    } catch (err) {
      if (visibleStep) env.emit({ type: 'step-error', id, message: errorText(err) });
      throw err;
    }
    state = outcome.state;
    if (visibleStep && !outcome.cached) {
      env.emit({ type: 'step-done', id, durationMs: Date.now() - started, ...(outcome.layerSize !== undefined ? { layerSize: outcome.layerSize } : {}) });
    }
  }
  return state;
}

interface StepOutcome {
  state: StageState;
  cached: boolean;
  layerSize?: number;
}

interface CacheData {
  delta: StepDelta;
  inputs: CacheInputs;
}

/** One instruction through the cache: hit → restore the state; miss → dispatch, then store. */
async function runStep(
  ins: Instruction,
  state: StageState,
  env: StepEnv,
  o: { id: number; noCache: boolean; emit: (e: BuildEvent) => void; stageKey: string },
): Promise<StepOutcome> {
  const prepared = await dispatch(ins, cloneState(state), env);
  if (prepared.inputs === undefined || prepared.apply === undefined) return { state: prepared.state, cached: false };
  const key = cacheKey(prepared.inputs);
  const { cache } = env.store;
  if (!o.noCache) {
    const hit = await cache.get(key);
    const data = hit?.data as CacheData | undefined;
    const layers = data?.delta.layer !== undefined ? [data.delta.layer] : [];
    if (data !== undefined && (await layersPresent(env.store, layers))) {
      await ensureSnapshots(env.store, layers, env.signal);
      o.emit({ type: 'step-cached', id: o.id });
      return { state: applyDelta(prepared.state, data.delta, key), cached: true };
    }
    const last = await cache.get(o.stageKey);
    o.emit({ type: 'step-miss', id: o.id, reasons: explainMiss((last?.data as CacheData | undefined)?.inputs, prepared.inputs) });
  }
  const delta = await prepared.apply();
  const data: CacheData = { delta, inputs: prepared.inputs };
  const refs = delta.layer !== undefined ? [delta.layer.descriptor.digest] : [];
  const created = new Date().toISOString();
  await cache.put(key, { refs, data, created });
  await cache.put(o.stageKey, { refs: [], data: { inputs: prepared.inputs }, created });
  return { state: applyDelta(prepared.state, delta, key), cached: false, ...(delta.layerSize !== undefined ? { layerSize: delta.layerSize } : {}) };
}

async function layersPresent(store: Store, layers: StageState['layers']): Promise<boolean> {
  for (const l of layers) if (!(await store.blobs.has(l.descriptor.digest))) return false;
  return true;
}

async function resolveBase(planned: PlannedStage, env: StageRunEnv): Promise<StageState> {
  const base = planned.base;
  if (base.kind === 'scratch') {
    return { config: emptyConfig(env.platform), layers: [], key: `scratch:${env.platform.os}/${env.platform.architecture}`, args: new Map() };
  }
  if (base.kind === 'stage') {
    const s = env.done.get(base.index);
    if (s === undefined) throw new TsbuildError('INTERNAL', `stage ${base.index} not built`);
    return cloneState(s);
  }
  const img = await resolveBaseImage(base.ref, env.deps, {
    platform: env.platform,
    pull: env.request.pull === true,
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
    onEvent: env.emit,
  });
  return img.state;
}

async function stageByRef(ref: string, env: StageRunEnv): Promise<StageState> {
  const idx = env.plan.stageIndexByRef(ref);
  if (idx !== undefined) {
    const s = env.done.get(idx);
    if (s === undefined) throw new TsbuildError('INTERNAL', `stage ${ref} not built before use`);
    return s;
  }
  return (await resolveBaseImage(ref, env.deps, { platform: env.platform, pull: false, ...(env.signal !== undefined ? { signal: env.signal } : {}) })).state;
}

/** Identifies "the same step" across builds, for cache-miss explanations. */
function stepIdentity(env: StageRunEnv, stage: Stage, ins: Instruction): string {
  return cacheKey({ parent: env.context.dir, platform: '', instruction: `${ins.location.file}:${stage.name ?? stage.index}:${ins.location.startLine}`, env: [] });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export type { Digest };
