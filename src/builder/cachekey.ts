/**
 * Cache keys (DESIGN.md): sha256 of canonical JSON of the parent key (or base image digest),
 * the platform, the normalised instruction after expansion, the build args and env it can see,
 * and for COPY/ADD the digest of exactly the selected sources. The named inputs are kept so a
 * miss can be explained by comparing them with the last build of the same step.
 */
import { createHash } from 'node:crypto';

export interface CacheInputs {
  parent: string;
  platform: string;
  instruction: string;
  /** Build args and env visible to the step, as sorted KEY=VALUE strings. */
  env: string[];
  /** COPY/ADD: digest of the selected sources; RUN: digests of mounted sources. */
  content?: string;
  /** Anything else that changes the result (user, workdir, network, mounts). */
  extra?: Record<string, string>;
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function cacheKey(inputs: CacheInputs): string {
  return createHash('sha256').update(canonicalJson(inputs)).digest('hex');
}

/** Human-readable reasons why `now` differs from `before` (the last build of the same step). */
export function explainMiss(before: CacheInputs | undefined, now: CacheInputs): string[] {
  if (before === undefined) return ['no earlier build of this step in the cache'];
  const reasons: string[] = [];
  if (before.parent !== now.parent) reasons.push('the previous step or base image changed');
  if (before.platform !== now.platform) reasons.push(`platform changed: ${before.platform} -> ${now.platform}`);
  if (before.instruction !== now.instruction) {
    reasons.push(`instruction changed: ${JSON.stringify(before.instruction)} -> ${JSON.stringify(now.instruction)}`);
  }
  const oldEnv = new Set(before.env);
  const newEnv = new Set(now.env);
  for (const e of now.env) if (!oldEnv.has(e)) reasons.push(`env/arg now ${e}`);
  for (const e of before.env) {
    const name = e.split('=')[0] ?? e;
    if (!newEnv.has(e) && !now.env.some((n) => n.startsWith(`${name}=`))) reasons.push(`env/arg ${name} no longer set`);
  }
  if (before.content !== now.content) reasons.push('source files changed');
  const keys = new Set([...Object.keys(before.extra ?? {}), ...Object.keys(now.extra ?? {})]);
  for (const k of [...keys].sort()) {
    const a = before.extra?.[k];
    const b = now.extra?.[k];
    if (a !== b) reasons.push(`${k} changed: ${a ?? '(unset)'} -> ${b ?? '(unset)'}`);
  }
  return reasons.length > 0 ? reasons : ['cache entry missing (pruned or never stored)'];
}
