/**
 * The value that flows through one stage: the image config being edited, its layers (blob
 * descriptor + diffID + snapshot dir), and the chain cache key. Each step returns a new state.
 */
import type { ContainerConfig, Descriptor, ImageConfig, Digest } from '../image/index.js';

export interface LayerRef {
  diffId: Digest;
  /** The blob in the store: compressed for pulled layers, the uncompressed tar for built ones. */
  descriptor: Descriptor;
}

export interface StageState {
  config: ImageConfig;
  layers: LayerRef[];
  /** Chain key: the base image digest, then each step's cache key. */
  key: string;
  /** Build args declared in this stage (name → value), visible to RUN and expansion. */
  args: Map<string, string>;
  /**
   * Names whose latest writer was an ARG with a value, not an ENV: BuildKit adds both to one env
   * list in order, so `ENV V=a` then `ARG V=b` gives RUN and expansion `b` (the config keeps `a`).
   */
  argsOverEnv: Set<string>;
}

/** Marks an ARG declared without any value: listed as `K=` in RUN history, absent from the env. */
export const UNSET_ARG = '\u0000unset';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function emptyConfig(platform: { os: string; architecture: string; variant?: string }): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/** A deep copy, so steps never mutate a state another stage (or the cache) still holds. */
export function cloneState(state: StageState): StageState {
  return {
    config: cloneConfig(state.config),
    layers: state.layers.map((l) => ({ diffId: l.diffId, descriptor: { ...l.descriptor } })),
    key: state.key,
    args: new Map(state.args),
    argsOverEnv: new Set(state.argsOverEnv),
  };
}

/**
 * A copy a step may edit without touching the original: every array and object a step changes in
 * place is copied one level down, and history entries, which nothing changes once the step that
 * wrote them is done, are shared. (structuredClone of the whole config for every step made long
 * Dockerfiles quadratic: 3,000 ENV lines spent 3.3 s cloning.) A new mutable member of
 * ContainerConfig needs its line in cloneContainerConfig.
 */
export function cloneConfig(config: ImageConfig): ImageConfig {
  const out: ImageConfig = { ...config, rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids] } };
  if (config.history !== undefined) out.history = [...config.history];
  if (config.config !== undefined) out.config = cloneContainerConfig(config.config);
  return out;
}

function cloneContainerConfig(c: ContainerConfig): ContainerConfig {
  const out: ContainerConfig = { ...c };
  if (c.Env) out.Env = [...c.Env];
  if (c.Entrypoint) out.Entrypoint = [...c.Entrypoint];
  if (c.Cmd) out.Cmd = [...c.Cmd];
  if (c.OnBuild) out.OnBuild = [...c.OnBuild];
  if (c.Shell) out.Shell = [...c.Shell];
  if (c.Labels) out.Labels = { ...c.Labels };
  if (c.ExposedPorts) out.ExposedPorts = { ...c.ExposedPorts };
  if (c.Volumes) out.Volumes = { ...c.Volumes };
  if (c.Healthcheck) out.Healthcheck = structuredClone(c.Healthcheck);
  return out;
}

/** What a step's expansion and RUN see: ARGs with a value, then ENV, less the ENVs a later ARG shadows. */
export function buildEnv(state: StageState): Map<string, string> {
  const env = new Map<string, string>();
  for (const [k, v] of state.args) if (v !== UNSET_ARG) env.set(k, v);
  for (const [k, v] of envOf(state.config)) if (!state.argsOverEnv.has(k)) env.set(k, v);
  return env;
}

export function envOf(config: ImageConfig): Map<string, string> {
  const env = new Map<string, string>();
  for (const kv of config.config?.Env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return env;
}

export function setEnv(config: ImageConfig, key: string, value: string): void {
  const cc = (config.config ??= {});
  const env = cc.Env ?? [];
  const i = env.findIndex((kv) => kv.startsWith(`${key}=`));
  if (i >= 0) env[i] = `${key}=${value}`;
  else env.push(`${key}=${value}`);
  cc.Env = env;
}
