/**
 * One instruction through the cache: dispatch it, then either restore its delta from the cache
 * (a hit) or run it and store the delta. The inputs of the last build of the same step are kept
 * under a per-step identity so a miss can say which input differs.
 */
import type { Instruction } from '../parser/types.js';
import type { Store } from '../store/index.js';
import { ensureSnapshots } from './base.js';
import { cacheKey, explainMiss, type CacheInputs } from './cachekey.js';
import type { BuildEvent } from './events.js';
import { cloneState, type StageState } from './state.js';
import { applyDelta, dispatch, type StepDelta, type StepEnv } from './steps.js';

export interface StepOutcome {
  state: StageState;
  cached: boolean;
  layerSize?: number;
}

interface CacheData {
  delta: StepDelta;
  inputs: CacheInputs;
  /** The key later steps chain on, when it is not this entry's own key (a forced re-run). */
  chainKey?: string;
}

export async function runStep(
  ins: Instruction,
  state: StageState,
  env: StepEnv,
  o: { id: number; noCache: boolean; emit: (e: BuildEvent) => void; stepIdentity: string },
): Promise<StepOutcome> {
  const before = state.config.history?.length ?? 0;
  const prepared = await dispatch(ins, cloneState(state), env);
  if (prepared.inputs === undefined || prepared.apply === undefined) {
    // BuildKit leaves a metadata entry's time unset (commit fills it from its neighbours), so a
    // fully cached rebuild gives the same config and image ID. With an epoch it is the epoch.
    if (env.sourceDateEpoch === undefined) for (const h of (prepared.state.config.history ?? []).slice(before)) delete h.created;
    return { state: prepared.state, cached: false };
  }
  const key = cacheKey(prepared.inputs);
  const { cache } = env.store;
  if (!o.noCache) {
    const hit = await cache.get(key);
    const data = hit?.data as CacheData | undefined;
    const layers = data?.delta.layer !== undefined ? [data.delta.layer] : [];
    if (data !== undefined && (await layersPresent(env.store, layers))) {
      await ensureSnapshots(env.store, layers, env.signal);
      o.emit({ type: 'step-cached', id: o.id });
      // The chain key the entry was built with: after a --no-cache re-run replaced this entry,
      // the next steps must match what was built on the new layer, not the old one's entries.
      return { state: applyDelta(prepared.state, data.delta, data.chainKey ?? key), cached: true };
    }
  }
  const last = await cache.get(o.stepIdentity);
  o.emit({ type: 'step-miss', id: o.id, reasons: o.noCache ? ['cache disabled for this step (--no-cache)'] : explainMiss((last?.data as CacheData | undefined)?.inputs, prepared.inputs) });
  const delta = await prepared.apply();
  // A forced re-run may give a different layer (times, downloads): later steps must not match
  // entries built on the old one, so the chain key then names the new layer.
  const chainKey = o.noCache && delta.layer !== undefined ? cacheKey({ parent: key, platform: '', instruction: 'rebuilt', env: [], content: delta.layer.diffId }) : key;
  const data: CacheData = { delta, inputs: prepared.inputs, ...(chainKey !== key ? { chainKey } : {}) };
  const refs = delta.layer !== undefined ? [delta.layer.descriptor.digest] : [];
  const created = new Date().toISOString();
  await cache.put(key, { refs, data, created }, env.signal !== undefined ? { signal: env.signal } : {});
  await cache.put(o.stepIdentity, { refs: [], data: { inputs: prepared.inputs }, created });
  return { state: applyDelta(prepared.state, delta, chainKey), cached: false, ...(delta.layerSize !== undefined ? { layerSize: delta.layerSize } : {}) };
}

async function layersPresent(store: Store, layers: StageState['layers']): Promise<boolean> {
  for (const l of layers) if (!(await store.blobs.has(l.descriptor.digest))) return false;
  return true;
}
