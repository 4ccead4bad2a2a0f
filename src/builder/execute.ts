/**
 * The build loop: stages in dependency order (independent ones concurrently), each instruction
 * through the cache (runstep.ts), every step reported as a BuildEvent. This file owns ordering,
 * ONBUILD triggers, named build contexts (named-context.ts), step error locations and events.
 */
import { join, resolve as resolvePath } from 'node:path';
import type { Digest, Platform } from '../image/index.js';
import { parseDockerfile } from '../parser/index.js';
import type { Dockerfile, Instruction, Stage } from '../parser/types.js';
import type { RegistryClient } from '../registry/index.js';
import { cleanupStale } from '../sandbox/index.js';
import { asStoreNoSpace, sweepTmp, type ContentMemo, type Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';
import { resolveBaseImage } from './base.js';
import { cacheKey } from './cachekey.js';
import { commitImage, type CommittedImage } from './commit.js';
import { BuildContext } from './context.js';
import type { EventSink } from './events.js';
import { loadContextIgnore, loadIgnore, readDockerfile } from './ignore.js';
import { CountingMemo, attachLocation, type ContextStats } from './locate.js';
import { takeTriggers, type Trigger } from './onbuild.js';
import { findNamedContext, type NamedContext } from './named-context.js';
import { importOciLayout } from './oci-layout.js';
import { dependencyOrder, planBuild, type BuildPlan, type PlannedStage } from './plan.js';
import { runStep, type StepOutcome } from './runstep.js';
import { cloneState, emptyConfig, type StageState } from './state.js';
import { ensurePath, isVisibleStep, type SecretSource, type StepEnv } from './steps.js';

export type { SecretSource } from './steps.js';

export interface BuildRequest {
  contextDir: string;
  dockerfile?: string;
  /** The Dockerfile itself (`-f -`: read from stdin), instead of reading `dockerfile`. */
  dockerfileText?: string;
  /** The context dir is temporary (`build -`): its file hashes are memoised for this build only. */
  ephemeralContext?: boolean;
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
  /** `--secret`: by id, a file path or the value itself (an environment variable's). */
  secrets?: Record<string, SecretSource>;
  /** `--ssh`: by id (`default`, ...), an agent socket or private key files, for RUN --mount=type=ssh. */
  ssh?: Record<string, string[]>;
  sourceDateEpoch?: number;
  /** `--build-context NAME=VALUE`, keyed by contextKey(NAME) (named-context.ts). */
  namedContexts?: ReadonlyMap<string, NamedContext>;
}

export interface BuildDeps {
  store: Store;
  registry?: RegistryClient;
}

export interface BuildResult extends CommittedImage {
  tags: string[];
  /** How the context was hashed: files whose contents were read vs. answered by the stat memo. */
  contextStats: ContextStats;
}

export type { ContextStats };

const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export async function build(
  request: BuildRequest,
  deps: BuildDeps,
  options: { signal?: AbortSignal; onEvent?: EventSink } = {},
): Promise<BuildResult> {
  // A GC lease for the whole build: a concurrent prune waits instead of collecting what this build
  // resolved but has not tagged yet. First, undo what killed builds left (stray steps, cgroups, tmp).
  return deps.store.withLease(async () => {
    await sweepTmp(deps.store.root, { onDead: cleanupStale });
    return buildLeased(request, deps, options).catch((err: unknown) => {
      throw asStoreNoSpace(deps.store.root, err); // a full disk under the store: one clear STORE error
    });
  }, options.signal !== undefined ? { signal: options.signal } : {});
}

async function buildLeased(request: BuildRequest, deps: BuildDeps, options: { signal?: AbortSignal; onEvent?: EventSink }): Promise<BuildResult> {
  const started = Date.now();
  const emit: EventSink = options.onEvent ?? (() => undefined);
  const signal = options.signal;
  const contextDir = resolvePath(request.contextDir);
  const dockerfilePath = resolvePath(contextDir, request.dockerfile ?? 'Dockerfile');
  const text =
    request.dockerfileText ??
    (await readDockerfile(dockerfilePath, { contained: request.ephemeralContext === true, ...(signal !== undefined ? { signal } : {}) }).catch((err: unknown) => {
      if (err instanceof TsbuildError) throw err; // too large, not a regular file
      throw new TsbuildError('NOT_FOUND', `cannot read Dockerfile ${dockerfilePath}`, { cause: err });
    }));
  const df: Dockerfile = parseDockerfile(text, { file: request.dockerfile ?? 'Dockerfile' });
  const platform = request.platform ?? DEFAULT_PLATFORM;
  const named = request.namedContexts ?? new Map<string, NamedContext>();
  const plan = planBuild(df, {
    buildArgs: request.buildArgs ?? {},
    platform,
    ...(request.target !== undefined ? { target: request.target } : {}),
    isNamedContext: (name) => findNamedContext(named, name) !== undefined,
  });
  // Values an in-stage `ARG NAME` (no default) inherits: meta ARGs, then the predefined platform ARGs.
  const inherited = new Map(plan.predefinedArgs);
  for (const [k, v] of plan.metaArgs) if (v !== undefined) inherited.set(k, v);
  for (const name of plan.unusedBuildArgs) emit({ type: 'warning', message: `build-arg ${name} was given but no stage consumes it` });

  const stored = request.ephemeralContext === true ? buildOnlyMemo() : deps.store.cache.memoFor(contextDir);
  await stored.load();
  const memo = new CountingMemo(stored);
  const context = new BuildContext(contextDir, { ignore: await loadIgnore(dockerfilePath, contextDir, { contained: request.ephemeralContext === true }), memo });
  const inflight = new Map<number, Promise<StageState>>();
  const env: StageRunEnv = {
    df, lines: text.split('\n'), plan, inherited, deps, context, counter: { next: 1 }, emit, platform, request, signal,
    images: new Map(), named, contexts: new Map(), flushes: [], runStage: (i) => runStage(i),
  };
  const runStage = (index: number): Promise<StageState> => {
    const started = inflight.get(index);
    if (started !== undefined) return started;
    // The stage and every stage it needs that has not started, started dependencies first, so each
    // finds its dependencies' promises in place; each builds once they settle, independent stages
    // concurrently. Starting dependencies recursively overflowed the stack on long FROM chains.
    for (const i of dependencyOrder([index], plan.stages, (i) => inflight.has(i))) {
      const planned = plan.stages[i] as PlannedStage;
      const deps = planned.dependencies.map((d) => inflight.get(d) as Promise<StageState>);
      inflight.set(i, Promise.all(deps).then(() => buildStage(planned, env)));
    }
    return inflight.get(index) as Promise<StageState>;
  };
  const finalState = await runStage(plan.target);
  await stored.flush();
  for (const flush of env.flushes) await flush();

  const created = request.sourceDateEpoch !== undefined ? new Date(request.sourceDateEpoch * 1000).toISOString() : new Date().toISOString();
  const state = cloneState(finalState);
  if (request.labels !== undefined && Object.keys(request.labels).length > 0) {
    const cc = (state.config.config ??= {});
    cc.Labels = { ...(cc.Labels ?? {}), ...request.labels };
  }
  const image = await commitImage(deps.store, state, { created, ...(request.sourceDateEpoch !== undefined ? { sourceDateEpoch: request.sourceDateEpoch } : {}), ...(signal !== undefined ? { signal } : {}) });
  const tags = request.tags ?? [];
  for (const tag of tags) await deps.store.tags.set(tag, image.manifestDescriptor);
  emit({ type: 'build-done', imageId: image.configDigest, manifestDigest: image.manifestDigest, tags, durationMs: Date.now() - started, context: memo.stats() });
  return { ...image, tags, contextStats: memo.stats() };
}

interface StageRunEnv {
  df: Dockerfile;
  lines: string[];
  plan: BuildPlan;
  inherited: Map<string, string>;
  deps: BuildDeps;
  context: BuildContext;
  counter: { next: number };
  emit: EventSink;
  platform: Platform;
  request: BuildRequest;
  signal: AbortSignal | undefined;
  /** `COPY --from=<image>` and trigger bases resolved once per build, not at every use. */
  images: Map<string, Promise<StageState>>;
  named: ReadonlyMap<string, NamedContext>;
  /** Named contexts resolved once per build. */
  contexts: Map<NamedContext, Promise<StageState>>;
  /** Stat memos of named local contexts, written back at the end like the main context's. */
  flushes: (() => Promise<void>)[];
  runStage(index: number): Promise<StageState>;
}

interface Step {
  ins: Instruction;
  trigger?: Trigger;
  ordinal: number;
}

async function buildStage(planned: PlannedStage, env: StageRunEnv): Promise<StageState> {
  const { stage } = planned;
  const label = env.plan.stages.length > 1 ? (stage.name ?? `stage-${stage.index}`) : '';
  const fromId = env.counter.next++;
  const fromText = planned.replaced === true ? `build context ${stage.name ?? ''}` : `FROM ${planned.baseText}${planned.base.kind === 'context' ? ' (build context)' : ''}`;
  let state: StageState;
  let triggers: Trigger[];
  const t0 = Date.now();
  try {
    state = await resolveBase(planned, env);
    // A stage a named context replaces is that context as it is (BuildKit: no triggers, no steps).
    triggers = planned.replaced === true ? [] : takeTriggers(state, planned.baseText, stage.from.location);
  } catch (err) {
    env.emit({ type: 'step-start', id: fromId, stage: label, index: 1, total: 1, text: fromText });
    env.emit({ type: 'step-error', id: fromId, message: errorText(err) });
    throw attachLocation(err, stage.from, env.lines);
  }
  const steps: Step[] = [
    ...triggers.map((t, i): Step => ({ ins: t.instruction, trigger: t, ordinal: i })),
    ...planned.instructions.map((ins, i): Step => ({ ins, ordinal: i })),
  ];
  const visible = steps.filter((s) => isVisibleStep(s.ins)).length + 1;
  let step = 1;
  env.emit({ type: 'step-start', id: fromId, stage: label, index: step, total: visible, text: fromText });
  env.emit({ type: 'step-done', id: fromId, durationMs: Date.now() - t0 });
  ensurePath(state);
  const filters = (env.request.noCacheFilter ?? []).map((f) => f.toLowerCase());
  const noCache = env.request.noCache === true || filters.includes(stage.name?.toLowerCase() ?? String(stage.index));
  const stepEnv = stepEnvFor(env, env.context, noCache);
  for (const { ins, trigger, ordinal } of steps) {
    env.signal?.throwIfAborted();
    const visibleStep = isVisibleStep(ins);
    const id = visibleStep ? env.counter.next++ : 0;
    const text = trigger !== undefined ? `ONBUILD ${trigger.text}` : ins.original.replace(/\s+/g, ' ').trim();
    if (visibleStep) env.emit({ type: 'step-start', id, stage: label, index: ++step, total: visible, text });
    const started = Date.now();
    stepEnv.onLog = (stream, chunk) => env.emit({ type: 'step-log', id, stream, data: chunk.toString('utf8') });
    let outcome: StepOutcome;
    try {
      const identity = stepIdentity(env, stage, trigger !== undefined ? `onbuild:${ordinal}` : `line:${ins.location.startLine}`);
      outcome = await runStep(ins, state, stepEnv, { id, noCache, emit: visibleStep ? env.emit : () => undefined, stepIdentity: identity });
    } catch (err) {
      if (visibleStep) env.emit({ type: 'step-error', id, message: errorText(err) });
      throw attachLocation(trigger !== undefined ? triggerError(err, trigger, planned.baseText) : err, ins, env.lines);
    }
    state = outcome.state;
    if (visibleStep && !outcome.cached) {
      env.emit({ type: 'step-done', id, durationMs: Date.now() - started, ...(outcome.layerSize !== undefined ? { layerSize: outcome.layerSize } : {}) });
    }
  }
  return state;
}

async function resolveBase(planned: PlannedStage, env: StageRunEnv): Promise<StageState> {
  const base = planned.base;
  if (base.kind === 'scratch') return scratchState(env.platform);
  if (base.kind === 'stage') return cloneState(await env.runStage(base.index));
  if (base.kind === 'context') {
    const ctx = findNamedContext(env.named, base.name);
    if (ctx === undefined) throw new TsbuildError('USAGE', `no build context named ${base.name}`);
    return cloneState(await namedContextState(ctx, env));
  }
  const img = await resolveBaseImage(base.ref, env.deps, {
    platform: env.platform,
    pull: env.request.pull === true,
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
    onEvent: env.emit,
  });
  return img.state;
}

function scratchState(platform: Platform): StageState {
  return { config: emptyConfig(platform), layers: [], key: `scratch:${platform.os}/${platform.architecture}`, args: new Map(), argsOverEnv: new Set() };
}

/** A stage by name/index (built on demand: ONBUILD triggers can name stages the plan did not see), else an image, once. */
async function stageByRef(ref: string, env: StageRunEnv): Promise<StageState> {
  const idx = /^\d+$/.test(ref) ? Number(ref) : env.plan.stageIndexByRef(ref);
  if (idx !== undefined && idx < env.plan.stages.length) return env.runStage(idx);
  const ctx = findNamedContext(env.named, ref);
  if (ctx !== undefined) return namedContextState(ctx, env);
  let p = env.images.get(ref);
  if (p === undefined) {
    p = resolveBaseImage(ref, env.deps, { platform: env.platform, pull: false, ...(env.signal !== undefined ? { signal: env.signal } : {}) }).then((i) => i.state);
    env.images.set(ref, p);
  }
  return p;
}

function stepEnvFor(env: StageRunEnv, context: BuildContext, noCache: boolean): StepEnv {
  return {
    store: env.deps.store,
    context,
    platform: env.platform,
    escape: env.df.directives.escape,
    metaArgs: env.inherited,
    buildArgs: env.request.buildArgs ?? {},
    stageState: (ref: string) => stageByRef(ref, env),
    network: env.request.network ?? 'host',
    limits: env.request.limits ?? {},
    secrets: env.request.secrets ?? {},
    ...(env.request.ssh !== undefined ? { ssh: env.request.ssh } : {}),
    ...(env.request.sourceDateEpoch !== undefined ? { sourceDateEpoch: env.request.sourceDateEpoch } : {}),
    ...(noCache ? { noCache } : {}),
    ...(env.signal !== undefined ? { signal: env.signal } : {}),
    cmdSetInStage: false,
  };
}

/** A named build context's state, once per build: the image it names (registry/store or an OCI layout), or its directory as one layer. */
function namedContextState(ctx: NamedContext, env: StageRunEnv): Promise<StageState> {
  let p = env.contexts.get(ctx);
  if (p === undefined) {
    const signalOpt = env.signal !== undefined ? { signal: env.signal } : {};
    p =
      ctx.kind === 'image'
        ? resolveBaseImage(ctx.ref, env.deps, { platform: env.platform, pull: env.request.pull === true, ...signalOpt, onEvent: env.emit }).then((i) => i.state)
        : ctx.kind === 'oci-layout'
          ? importOciLayout(env.deps.store, ctx.layout, env.platform, env.signal).then(
              // Copied in by digest: resolved from the store, never from a registry.
              async (digest) => (await resolveBaseImage(`localhost/oci-layout@${digest}`, env.deps, { platform: env.platform, pull: false, ...signalOpt })).state,
            )
          : localContextState(ctx.dir, ctx.name, env);
    env.contexts.set(ctx, p);
  }
  return p;
}

/** `COPY . /` onto scratch, from the directory with its own .dockerignore: a cached step like any other. */
async function localContextState(dir: string, name: string, env: StageRunEnv): Promise<StageState> {
  const stored = env.deps.store.cache.memoFor(dir);
  await stored.load();
  env.flushes.push(() => stored.flush());
  const context = new BuildContext(dir, { ignore: await loadContextIgnore(dir), memo: stored });
  const copyAll = parseDockerfile('FROM scratch\nCOPY . /\n', { file: join(dir, '(build context)') }).stages[0]?.instructions[0] as Instruction;
  const scratch = scratchState(env.platform);
  const identity = cacheKey({ parent: dir, platform: '', instruction: `build-context:${name}`, env: [] });
  const outcome = await runStep(copyAll, scratch, stepEnvFor(env, context, env.request.noCache === true), { id: 0, noCache: env.request.noCache === true, emit: () => undefined, stepIdentity: identity });
  return outcome.state;
}

/** Identifies "the same step" across builds, for cache-miss explanations. */
function stepIdentity(env: StageRunEnv, stage: Stage, where: string): string {
  return cacheKey({ parent: env.context.dir, platform: '', instruction: `${env.df.file}:${stage.name ?? stage.index}:${where}`, env: [] });
}

/** A failing trigger names the base image and the trigger text; the error code (exit status) is kept. */
function triggerError(err: unknown, trigger: Trigger, base: string): unknown {
  if (!(err instanceof TsbuildError) || err.message.startsWith('ONBUILD trigger')) return err;
  return new TsbuildError(err.code, `ONBUILD trigger ${JSON.stringify(trigger.text)} of base image ${base}: ${err.message}`, {
    cause: err,
    ...(err.hint !== undefined ? { hint: err.hint } : {}),
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export type { Digest };

/** A stat memo that lives for one build: a temporary context's paths never come back. */
function buildOnlyMemo(): ContentMemo {
  const digests = new Map<string, string>();
  return {
    get: (key) => digests.get(key),
    set: (key, digest) => void digests.set(key, digest),
    load: () => Promise.resolve(),
    flush: () => Promise.resolve(),
  };
}
