/**
 * Build planning: meta ARGs resolved (defaults + --build-arg), FROM expanded, the stage graph
 * (FROM <stage>, COPY --from, RUN --mount from=), --target, pruning to what the target needs,
 * independent stages grouped for parallel execution. Pure: no I/O.
 */
import { DockerfileError } from '../parser/errors.js';
import { locateError } from '../parser/locate.js';
import { expandWordWithMatches } from '../parser/shell/index.js';
import { suggest } from '../parser/suggest.js';
import type { Dockerfile, Instruction, Location, Stage } from '../parser/types.js';
import { type Platform, parsePlatform, platformArgs, proxyArgNames } from './plan-platform.js';

export { type Platform, formatPlatform, parsePlatform, platformArgs, proxyArgNames } from './plan-platform.js';

export interface PlanOptions {
  buildArgs?: Record<string, string>;
  /** Stage name, case-insensitive. Default: the last stage. */
  target?: string;
  /** Target platform (default linux/amd64). */
  platform?: Platform;
  /** Platform of the machine running the build (default linux/amd64). */
  buildPlatform?: Platform;
  /** Named build contexts (named-context.ts): whether a name (stage, FROM, --from) is one. */
  isNamedContext?: (name: string) => boolean;
}

export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string } | { kind: 'context'; name: string };

export interface PlannedStage {
  index: number;
  name?: string;
  stage: Stage;
  base: StageBase;
  /** The FROM image text after meta-ARG expansion. */
  baseText: string;
  platform: Platform;
  instructions: Instruction[];
  /** Stage indices this stage needs (FROM, COPY --from, RUN --mount from=), sorted. */
  dependencies: number[];
  /** Images referenced by COPY --from / RUN --mount from= that are not stages. */
  imageRefs: string[];
  /** A named build context of this stage's name stands in for it: its instructions never run. */
  replaced?: true;
}

export interface BuildPlan {
  /** Meta ARG values after --build-arg overrides; undefined = declared without a value. */
  metaArgs: Map<string, string | undefined>;
  /** Predefined TARGET and BUILD platform ARGs. */
  predefinedArgs: Map<string, string>;
  /** Proxy build-args given (usable by RUN without being declared). */
  proxyArgs: Map<string, string>;
  buildArgs: Record<string, string>;
  platform: Platform;
  buildPlatform: Platform;
  stages: PlannedStage[];
  target: number;
  /** Stages the target needs, dependencies first, target last. */
  stagesToBuild: number[];
  /** stagesToBuild in waves: every stage depends only on stages of earlier waves. */
  parallelGroups: number[][];
  /** --build-arg names no ARG consumes (warning). */
  unusedBuildArgs: string[];
  stageIndexByRef(ref: string): number | undefined;
}

const defaultPlatform: Platform = { os: 'linux', architecture: 'amd64' };

function err(message: string, loc?: Location, hint?: string): DockerfileError {
  return new DockerfileError(message, {
    ...(loc === undefined ? {} : { file: loc.file, line: loc.startLine, endLine: loc.endLine }),
    ...(hint === undefined ? {} : { suggestion: hint }),
  });
}

function expand(word: string, env: Map<string, string>, escape: '\\' | '`', loc: Location): string {
  try {
    return expandWordWithMatches(word, env, { escape }).result;
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withLocation({ file: loc.file, line: loc.startLine, endLine: loc.endLine });
    throw e;
  }
}

export function planBuild(df: Dockerfile, options: PlanOptions = {}): BuildPlan {
  // Errors get the offending source line and a column (parser/locate.ts).
  try {
    return planUnlocated(df, options);
  } catch (e) {
    throw locateError(e, df);
  }
}

function planUnlocated(df: Dockerfile, options: PlanOptions): BuildPlan {
  const buildArgs = options.buildArgs ?? {};
  const platform = options.platform ?? defaultPlatform;
  const buildPlatform = options.buildPlatform ?? defaultPlatform;
  const escape = df.directives.escape;
  if (df.stages.length === 0) throw err('the Dockerfile has no FROM instruction (no build stage)', { file: df.file, startLine: 0, endLine: 0 });

  const predefinedArgs = platformArgs(platform, buildPlatform);
  // Global scope for FROM lines: predefined ARGs, then meta ARGs in order.
  const global = new Map(predefinedArgs);
  const metaArgs = new Map<string, string | undefined>();
  for (const inst of df.metaArgs) {
    for (const a of inst.args) {
      let value: string | undefined;
      if (Object.hasOwn(buildArgs, a.key)) value = buildArgs[a.key];
      else if (a.value !== undefined) value = expand(a.value, global, escape, inst.location);
      metaArgs.set(a.key, value);
      if (value !== undefined) global.set(a.key, value);
    }
  }

  const byName = new Map<string, number>();
  const isContext = options.isNamedContext ?? (() => false);
  const stages: PlannedStage[] = df.stages.map((st) => {
    const baseText = expand(st.from.image, global, escape, st.from.location);
    if (baseText === '') throw err(`base name (${st.from.image}) should not be blank`, st.from.location);
    const prev = byName.get(baseText.toLowerCase());
    const replaced = st.name !== undefined && isContext(st.name);
    const base: StageBase = replaced
      ? { kind: 'context', name: st.name as string }
      : prev !== undefined
        ? { kind: 'stage', index: prev }
        : baseText === 'scratch'
          ? { kind: 'scratch' }
          : isContext(baseText)
            ? { kind: 'context', name: baseText }
            : { kind: 'image', ref: baseText };
    let stagePlatform = platform;
    if (st.from.platform !== undefined) {
      const spec = expand(st.from.platform, global, escape, st.from.location);
      try {
        stagePlatform = parsePlatform(spec, platform);
      } catch (e) {
        throw e instanceof DockerfileError ? e.withLocation({ file: st.from.location.file, line: st.from.location.startLine }) : e;
      }
    }
    if (st.name !== undefined) byName.set(st.name, st.index);
    return {
      index: st.index, ...(st.name === undefined ? {} : { name: st.name }), stage: st, base, baseText,
      platform: stagePlatform, instructions: replaced ? [] : st.instructions, dependencies: [], imageRefs: [],
      ...(replaced ? { replaced: true as const } : {}),
    };
  });

  const stageIndexByRef = (ref: string): number | undefined => byName.get(ref.toLowerCase());
  for (const ps of stages) linkDependencies(ps, stages, stageIndexByRef, isContext, global, escape);

  const target = resolveTarget(options.target, stages, stageIndexByRef);
  const stagesToBuild = topoOrder(target, stages);
  const needed = new Set(stagesToBuild);
  const proxyArgs = new Map(Object.entries(buildArgs).filter(([k]) => proxyArgNames.has(k)));
  return {
    metaArgs, predefinedArgs, proxyArgs, buildArgs, platform, buildPlatform, stages, target, stagesToBuild,
    parallelGroups: waves(stagesToBuild, stages),
    unusedBuildArgs: unusedArgs(buildArgs, df, stages.filter((s) => needed.has(s.index))),
    stageIndexByRef,
  };
}

function linkDependencies(
  ps: PlannedStage,
  stages: PlannedStage[],
  byRef: (r: string) => number | undefined,
  isContext: (name: string) => boolean,
  global: Map<string, string>,
  escape: '\\' | '`',
): void {
  const deps = new Set<number>();
  const images = new Set<string>();
  if (ps.base.kind === 'stage') deps.add(ps.base.index);
  // COPY --from and RUN --mount from= name a stage (by name or index) or else an image.
  const addFrom = (text: string, loc: Location): void => {
    const from = expand(text, global, escape, loc);
    if (/^\d+$/.test(from)) {
      const idx = Number(from);
      if (idx >= stages.length) throw err(`invalid stage index ${from}`, loc);
      deps.add(idx);
      return;
    }
    const idx = byRef(from);
    if (idx !== undefined) deps.add(idx);
    else if (!isContext(from)) images.add(from);
  };
  const visit = (inst: Instruction): void => {
    if (inst.kind === 'COPY' && inst.from !== undefined) addFrom(inst.from, inst.location);
    else if (inst.kind === 'RUN') {
      for (const m of inst.mounts) {
        if (m.from === undefined || m.from === '' || m.type === 'secret' || m.type === 'ssh') continue;
        addFrom(m.from, inst.location);
      }
    }
  };
  ps.instructions.forEach(visit);
  ps.dependencies = [...deps].sort((a, b) => a - b);
  ps.imageRefs = [...images];
}

function resolveTarget(target: string | undefined, stages: PlannedStage[], byRef: (r: string) => number | undefined): number {
  if (target === undefined || target === '') return stages.length - 1;
  const idx = byRef(target);
  if (idx !== undefined) return idx;
  const names = stages.flatMap((s) => (s.name === undefined ? [] : [s.name]));
  const hint = names.length === 0 ? 'no stage has a name' : `stages: ${names.join(', ')}`;
  const e = new DockerfileError(`target stage "${target}" could not be found (${hint})`, {
    ...(suggest(target, names, false) === undefined ? {} : { suggestion: suggest(target, names, false) as string }),
  });
  throw e;
}

/**
 * `roots` and every stage they need that `skip` does not exclude, each after its dependencies.
 * A loop over an explicit stack, not a recursive walk: a chain of thousands of stages (`FROM s0 AS
 * s1`, `FROM s1 AS s2`, …) overflowed the JS stack. A cycle is an error naming the stage the walk
 * came back to, as the recursive walk named it.
 */
export function dependencyOrder(roots: number[], stages: PlannedStage[], skip: (index: number) => boolean = () => false): number[] {
  const state = new Map<number, 'visiting' | 'done'>();
  const order: number[] = [];
  const enter = (i: number, stack: { index: number; next: number }[]): void => {
    const s = state.get(i);
    if (s === 'done' || skip(i)) return;
    const ps = stages[i] as PlannedStage;
    if (s === 'visiting') throw err(`circular dependency detected on stage: ${ps.name ?? `stage-${i}`}`, ps.stage.from.location);
    state.set(i, 'visiting');
    stack.push({ index: i, next: 0 });
  };
  for (const root of roots) {
    const stack: { index: number; next: number }[] = [];
    enter(root, stack);
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as { index: number; next: number };
      const deps = (stages[top.index] as PlannedStage).dependencies;
      if (top.next < deps.length) {
        enter(deps[top.next++] as number, stack);
        continue;
      }
      state.set(top.index, 'done');
      order.push(top.index);
      stack.pop();
    }
  }
  return order;
}

/** What `target` needs, dependencies first (lowest index first among ready stages); rejects cycles. */
function topoOrder(target: number, stages: PlannedStage[]): number[] {
  const needed = dependencyOrder([target], stages);
  // Kahn's algorithm with the ready stages in a min-heap: linear-logarithmic where picking the
  // smallest ready index by rescanning every pending stage was quadratic in the stage count.
  const waiting = new Map<number, number>();
  const dependents = new Map<number, number[]>();
  const ready = new MinHeap();
  for (const i of needed) {
    const deps = (stages[i] as PlannedStage).dependencies;
    waiting.set(i, deps.length);
    for (const d of deps) {
      const list = dependents.get(d);
      if (list === undefined) dependents.set(d, [i]);
      else list.push(i);
    }
    if (deps.length === 0) ready.push(i);
  }
  const order: number[] = [];
  for (let next = ready.pop(); next !== undefined; next = ready.pop()) {
    order.push(next);
    for (const dep of dependents.get(next) ?? []) {
      const left = (waiting.get(dep) ?? 0) - 1;
      waiting.set(dep, left);
      if (left === 0) ready.push(dep);
    }
  }
  return order;
}

/** A binary min-heap of stage indices. */
class MinHeap {
  readonly #items: number[] = [];

  push(value: number): void {
    const a = this.#items;
    let i = a.push(value) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((a[parent] as number) <= value) break;
      a[i] = a[parent] as number;
      i = parent;
    }
    a[i] = value;
  }

  pop(): number | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined || a.length === 0) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= a.length) break;
      if (child + 1 < a.length && (a[child + 1] as number) < (a[child] as number)) child++;
      if ((a[child] as number) >= last) break;
      a[i] = a[child] as number;
      i = child;
    }
    a[i] = last;
    return top;
  }
}

function waves(order: number[], stages: PlannedStage[]): number[][] {
  const level = new Map<number, number>();
  for (const i of order) {
    // A loop, not Math.max(...deps): spreading a long argument list can overflow the stack too.
    let l = 0;
    for (const d of (stages[i] as PlannedStage).dependencies) l = Math.max(l, (level.get(d) ?? 0) + 1);
    level.set(i, l);
  }
  const groups: number[][] = [];
  for (const i of order) (groups[level.get(i) ?? 0] ??= []).push(i);
  return groups.map((g) => g.sort((a, b) => a - b));
}

function unusedArgs(buildArgs: Record<string, string>, df: Dockerfile, needed: PlannedStage[]): string[] {
  const consumed = new Set<string>();
  for (const inst of df.metaArgs) for (const a of inst.args) consumed.add(a.key);
  const scan = (inst: Instruction): void => {
    if (inst.kind === 'ARG') for (const a of inst.args) consumed.add(a.key);
    else if (inst.kind === 'ONBUILD') scan(inst.instruction);
  };
  for (const ps of needed) ps.instructions.forEach(scan);
  return Object.keys(buildArgs).filter((k) => !consumed.has(k) && !proxyArgNames.has(k) && !k.startsWith('BUILDKIT_')).sort();
}

/**
 * The value an `ARG key[=default]` inside a stage takes (BuildKit dispatchArg): --build-arg wins;
 * then the default (the caller expands it with the stage env); a bare `ARG key` inherits the meta
 * ARG or predefined ARG of that name.
 */
export function stageArgValue(plan: BuildPlan, key: string, hasDefault: boolean): { value?: string; useDefault: boolean } {
  if (Object.hasOwn(plan.buildArgs, key)) return { value: plan.buildArgs[key] as string, useDefault: false };
  if (hasDefault) return { useDefault: true };
  const meta = plan.metaArgs.has(key) ? plan.metaArgs.get(key) : plan.predefinedArgs.get(key);
  return meta === undefined ? { useDefault: false } : { value: meta, useDefault: false };
}
