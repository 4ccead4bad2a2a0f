/**
 * The executor's view of the plan: for each stage its base (scratch, an earlier stage, or an
 * image reference expanded with the meta ARGs) and the stages it depends on.
 * TODO(lead): replace the body with an adapter over plan.ts `planBuild` once it lands.
 */
import type { Platform } from '../image/index.js';
import { expandWordWithMatches } from '../parser/index.js';
import type { Dockerfile, Stage } from '../parser/types.js';
import { DockerfileError } from '../parser/errors.js';

export interface PlannedStage {
  stage: Stage;
  base: { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };
  baseText: string;
  dependsOn: number[];
  metaArgs: Map<string, string>;
}

export interface StagePlan {
  stages: PlannedStage[];
  target: number;
  unusedBuildArgs: string[];
  stageIndexByRef(ref: string): number | undefined;
}

export function planStages(df: Dockerfile, options: { buildArgs: Record<string, string>; platform: Platform; target?: string }): StagePlan {
  const p = options.platform;
  const meta = new Map<string, string>([
    ['TARGETPLATFORM', `${p.os}/${p.architecture}`], ['TARGETOS', p.os], ['TARGETARCH', p.architecture], ['TARGETVARIANT', p.variant ?? ''],
    ['BUILDPLATFORM', 'linux/amd64'], ['BUILDOS', 'linux'], ['BUILDARCH', 'amd64'], ['BUILDVARIANT', ''],
  ]);
  const consumed = new Set<string>();
  for (const a of df.metaArgs) {
    for (const { key, value } of a.args) {
      const v = options.buildArgs[key] ?? (value !== undefined ? expandWordWithMatches(value, meta).result : undefined);
      if (v !== undefined) meta.set(key, v);
      consumed.add(key);
    }
  }
  const byName = new Map<string, number>();
  for (const s of df.stages) if (s.name !== undefined) byName.set(s.name, s.index);
  const stageIndexByRef = (ref: string): number | undefined => {
    const lower = ref.toLowerCase();
    if (byName.has(lower)) return byName.get(lower);
    if (/^\d+$/.test(ref) && Number(ref) < df.stages.length) return Number(ref);
    return undefined;
  };
  const stages = df.stages.map((stage): PlannedStage => {
    const baseText = expandWordWithMatches(stage.from.image, meta).result;
    const prior = stageIndexByRef(baseText);
    const base: PlannedStage['base'] =
      baseText.toLowerCase() === 'scratch' ? { kind: 'scratch' } : prior !== undefined && prior < stage.index ? { kind: 'stage', index: prior } : { kind: 'image', ref: baseText };
    const deps = new Set<number>();
    if (base.kind === 'stage') deps.add(base.index);
    for (const ins of stage.instructions) {
      const from = ins.kind === 'COPY' ? ins.from : undefined;
      const refs = [from, ...(ins.kind === 'RUN' ? ins.mounts.map((m) => m.from) : [])].filter((r): r is string => r !== undefined);
      for (const r of refs) {
        const idx = stageIndexByRef(r);
        if (idx === undefined) continue;
        if (idx >= stage.index) throw new DockerfileError(`stage ${r} is used before it is defined (circular dependency)`, { file: ins.location.file, line: ins.location.startLine });
        deps.add(idx);
      }
      if (ins.kind === 'ARG') for (const a of ins.args) consumed.add(a.key);
    }
    return { stage, base, baseText, dependsOn: [...deps], metaArgs: meta };
  });
  let target = df.stages.length - 1;
  if (options.target !== undefined) {
    const idx = byName.get(options.target.toLowerCase());
    if (idx === undefined) {
      throw new DockerfileError(`target stage "${options.target}" could not be found (stages: ${[...byName.keys()].join(', ') || 'none named'})`);
    }
    target = idx;
  }
  if (target < 0) throw new DockerfileError('the Dockerfile has no FROM instruction');
  const unusedBuildArgs = Object.keys(options.buildArgs).filter((k) => !consumed.has(k) && !/^(http|https|ftp|no|all)_proxy$/i.test(k));
  return { stages, target, unusedBuildArgs, stageIndexByRef };
}
