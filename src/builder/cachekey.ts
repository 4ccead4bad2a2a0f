/**
 * Cache keys (DESIGN.md): sha256 of canonical JSON of the parent key (or base image digest),
 * the platform, the normalised instruction after expansion, the build args and env it can see,
 * and for COPY/ADD the digest of exactly the selected sources. The named inputs are kept so a
 * miss can be explained by comparing them with the last build of the same step.
 */
import { createHash } from 'node:crypto';
import { byKey } from '../util/order.js';

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
  /** RUN bind mounts (and cache mounts with from=) by target: `where|content identity` of the source. */
  mounts?: Record<string, string>;
  /** RUN bind mounts from the context by target: file -> digest. Not keyed, like `files`. */
  mountFiles?: Record<string, Record<string, string>>;
  /**
   * COPY/ADD from the context: path -> digest of each selected file. Not part of the key
   * (`content` already covers it); kept only so a miss can name the file that changed.
   */
  files?: Record<string, string>;
}

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(byKey);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function cacheKey(inputs: CacheInputs): string {
  const { files: _files, mountFiles: _mountFiles, ...keyed } = inputs;
  return createHash('sha256').update(canonicalJson(keyed)).digest('hex');
}

/**
 * Human-readable reasons why `now` differs from `before` (the last build of the same step), one
 * per differing input, naming it: the instruction text, a build arg or env variable, a context
 * file, the parent. `--explain-cache` prints them as they are.
 */
export function explainMiss(before: CacheInputs | undefined, now: CacheInputs): string[] {
  if (before === undefined) return ['no earlier build of this step in the cache'];
  const reasons: string[] = [];
  if (before.instruction !== now.instruction) {
    reasons.push(`instruction changed: ${JSON.stringify(before.instruction)} -> ${JSON.stringify(now.instruction)}`);
  }
  if (before.platform !== now.platform) reasons.push(`platform changed: ${before.platform} -> ${now.platform}`);
  reasons.push(...diffNamed('build arg/env', pairs(before.env), pairs(now.env)));
  if (before.content !== now.content) {
    const named = before.files !== undefined && now.files !== undefined ? diffNamed('file', new Map(Object.entries(before.files)), new Map(Object.entries(now.files)), false) : [];
    reasons.push('source files changed', ...named);
  }
  reasons.push(...mountReasons(before, now));
  const keys = new Set([...Object.keys(before.extra ?? {}), ...Object.keys(now.extra ?? {})]);
  for (const k of [...keys].sort()) {
    const a = before.extra?.[k];
    const b = now.extra?.[k];
    if (a !== b) reasons.push(`${k} changed: ${a ?? '(unset)'} -> ${b ?? '(unset)'}`);
  }
  // The parent only explains the miss when nothing of the step itself changed.
  if (reasons.length === 0 && before.parent !== now.parent) reasons.push('parent changed: an earlier step or the base image differs');
  return reasons.length > 0 ? reasons : ['cache entry missing (pruned or never stored)'];
}

/** A bind (or seeded cache) mount whose source content changed, named by its target, then the files that differ. */
function mountReasons(before: CacheInputs, now: CacheInputs): string[] {
  const out: string[] = [];
  const targets = new Set([...Object.keys(before.mounts ?? {}), ...Object.keys(now.mounts ?? {})]);
  for (const target of [...targets].sort()) {
    const a = before.mounts?.[target];
    const b = now.mounts?.[target];
    if (a === b || a === undefined || b === undefined) continue; // added/removed mounts show in `mounts`
    const where = (v: string): string => v.slice(0, v.lastIndexOf('|'));
    out.push(`mount ${target} changed: ${where(a) === where(b) ? `content of ${where(b)}` : `${where(a)} -> ${where(b)}`}`);
    const fa = before.mountFiles?.[target];
    const fb = now.mountFiles?.[target];
    if (fa !== undefined && fb !== undefined) out.push(...diffNamed('file', new Map(Object.entries(fa)), new Map(Object.entries(fb)), false));
  }
  return out;
}

function pairs(list: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of list) {
    const eq = e.indexOf('=');
    m.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return m;
}

function diffNamed(what: string, a: Map<string, string>, b: Map<string, string>, showValues = true): string[] {
  const out: string[] = [];
  const q = (v: string): string => (showValues ? `: ${JSON.stringify(v)}` : '');
  for (const name of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(name);
    const y = b.get(name);
    if (x === y) continue;
    if (x === undefined) out.push(`${what} ${name} added${q(y ?? '')}`);
    else if (y === undefined) out.push(`${what} ${name} removed`);
    else out.push(`${what} ${name} changed${showValues ? `: ${JSON.stringify(x)} -> ${JSON.stringify(y)}` : ''}`);
  }
  return out;
}
