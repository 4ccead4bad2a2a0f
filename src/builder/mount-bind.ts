/**
 * `RUN --mount=type=bind`: the source resolved when the step is prepared (it is part of the cache
 * key), the mount made when it runs. From the context the key is the digest of exactly the
 * mounted files (context digest machinery, .dockerignore applied); `from=STAGE|IMAGE` resolves
 * the source inside that rootfs (symlinks stay inside it: CVE-2024-1753) and keys on the stage's
 * cache key, as COPY --from does.
 */
import { createHash } from 'node:crypto';
import { copyFile, lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SandboxMount } from '../sandbox/index.js';
import { TsbuildError } from '../util/errors.js';
import { contextItem, hashItems } from './add-sources.js';
import { RootfsView } from './rootfs.js';
import { lowerDirsOf, type StepEnv } from './steps.js';

/** What a bind mount shows: a file, or a dir as stacked host dirs (top-most first). */
export type BindSource = { kind: 'file'; hostPath: string } | { kind: 'dir'; layers: string[] };

export interface ResolvedBind {
  source: BindSource;
  /** For --explain-cache: where the source is, e.g. `go.mod in the context`. */
  label: string;
  /** Identity of the mounted content (part of the cache key). */
  digest: string;
  /** Context binds: path below the mount -> digest (not keyed; names the file that changed). */
  files?: Record<string, string>;
}

export async function resolveBind(m: { source?: string; from?: string }, env: StepEnv): Promise<ResolvedBind> {
  const source = m.source ?? '/';
  if (m.from !== undefined) return stageBind(m.from, source, env);
  // Resolved inside the context: a symlink cannot point the mount at a host path (CVE-2024-1753).
  const [found] = await env.context.resolveSource(m.source ?? '.');
  if (found === undefined) throw new TsbuildError('CONTEXT', `bind mount source ${m.source ?? '.'} not found in the build context`);
  // The stat of what the path resolved to: after a symlink to `..` the context gives the link's own.
  const entry = { ...found, stat: await lstat(found.hostPath, { bigint: true }) };
  const hash = createHash('sha256');
  const files: Record<string, string> = {};
  await hashItems(hash, [contextItem(env.context, entry, undefined, '', env.signal)], env.signal, files);
  return {
    source: entry.stat.isDirectory() ? { kind: 'dir', layers: [entry.hostPath] } : { kind: 'file', hostPath: entry.hostPath },
    label: `${entry.rel === '' ? '.' : entry.rel} in the context`,
    digest: `sha256:${hash.digest('hex')}`,
    ...(Object.keys(files).length <= 2000 ? { files } : {}),
  };
}

async function stageBind(from: string, source: string, env: StepEnv): Promise<ResolvedBind> {
  const state = await env.stageState(from);
  const { path, entry } = await new RootfsView(lowerDirsOf(state, env.store)).resolve(source, true);
  if (entry === undefined) {
    throw new TsbuildError('DOCKERFILE', `bind mount source ${source} not found in ${from}`, { hint: `the stage or image "${from}" has no ${path}` });
  }
  const bind: BindSource = entry.stat.isDirectory() ? { kind: 'dir', layers: entry.dirLayers } : { kind: 'file', hostPath: entry.hostPath };
  if (!entry.stat.isDirectory() && !entry.stat.isFile()) throw new TsbuildError('DOCKERFILE', `bind mount source ${source} in ${from} is not a file or directory`);
  return { source: bind, label: `${path} from ${from}`, digest: `${state.key}:${path}` };
}

/**
 * The sandbox mount. `rw` means the step may write but the writes are discarded (BuildKit):
 * never a writable view of the source. Dirs get an overlay in the workRoot, files a private copy.
 */
export async function bindMount(b: BindSource, target: string, readonly: boolean, workRoot: string, n: number): Promise<SandboxMount> {
  if (b.kind === 'file') {
    if (readonly) return { type: 'bind', source: b.hostPath, target, readonly };
    const copy = join(workRoot, `rw-${n}`);
    await copyFile(b.hostPath, copy);
    return { type: 'bind', source: copy, target, readonly: false };
  }
  if (b.layers.length === 0) {
    // An empty rootfs (a scratch stage with nothing in it yet).
    const empty = join(workRoot, `empty-${n}`);
    await mkdir(empty);
    return { type: 'bind', source: empty, target, readonly: true };
  }
  const [only] = b.layers;
  if (b.layers.length === 1 && only !== undefined) return readonly ? { type: 'bind', source: only, target, readonly } : { type: 'overlay', source: only, target };
  return { type: 'layers', sources: b.layers, target, readonly };
}
