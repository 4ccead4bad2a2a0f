/**
 * `RUN --mount=type=bind`: the source resolved when the step is prepared (it is part of the cache
 * key), the mount made when it runs. From the context the key is the digest of exactly the
 * mounted files (context digest machinery, .dockerignore applied); `from=STAGE|IMAGE` resolves
 * the source inside that rootfs (symlinks stay inside it: CVE-2024-1753) and keys on the stage's
 * cache key, as COPY --from does.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmod, copyFile, lstat, mkdir, readdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { SandboxMount } from '../sandbox/index.js';
import { TsbuildError } from '../util/errors.js';
import { contextItem, hashItems } from './add-sources.js';
import type { BuildContext, ContextEntry } from './context.js';
import { lstatFile } from '../util/filestat.js';
import { RootfsView } from './rootfs.js';
import { lowerDirsOf, type StepEnv } from './steps.js';

/**
 * What a bind mount shows: a file, or a dir as stacked host dirs (top-most first); `hidden` are
 * paths below it that .dockerignore leaves out of the context (whited out over the host dir).
 */
export type BindSource = { kind: 'file'; hostPath: string } | { kind: 'dir'; layers: string[]; hidden?: string[] };

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
  const entry = { ...found, stat: await lstatFile(found.hostPath) };
  const hash = createHash('sha256');
  const files = new Map<string, string>();
  await hashItems(hash, [contextItem(env.context, entry, undefined, '', env.signal)], env.signal, files);
  const hidden = entry.stat.isDirectory() && env.context.filtered ? await ignoredBelow(env.context, entry, env.signal) : [];
  return {
    source: entry.stat.isDirectory() ? { kind: 'dir', layers: [entry.hostPath], ...(hidden.length > 0 ? { hidden } : {}) } : { kind: 'file', hostPath: entry.hostPath },
    label: `${entry.rel === '' ? '.' : entry.rel} in the context`,
    digest: `sha256:${hash.digest('hex')}`,
    // hashItems stops recording past 2,000 files: a longer list is cut, so none is kept.
    ...(files.size <= 2000 ? { files: Object.fromEntries(files) } : {}),
  };
}

/** Entries below `dir` the context's ignore rules leave out, relative to it (an ignored dir once). */
async function ignoredBelow(context: BuildContext, dir: ContextEntry, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  const visit = async (entry: ContextEntry, sub: string): Promise<void> => {
    const kept = new Map<string, ContextEntry>();
    for await (const child of context.children(entry, signal)) kept.set(posix.basename(child.rel), child);
    for (const name of await readdir(entry.hostPath)) {
      const child = kept.get(name);
      const path = sub === '' ? name : `${sub}/${name}`;
      if (child === undefined) out.push(path);
      else if (child.stat.isDirectory()) await visit(child, path);
    }
  };
  await visit(dir, '');
  return out;
}

/** A dir of overlay whiteouts (0/0 char devices, made by one mknod(1) run) for `paths`. */
async function whiteoutDir(dir: string, over: string, paths: string[], signal?: AbortSignal): Promise<void> {
  // The mask's dirs sit on top: each takes the mode of the dir it covers.
  const dirs = new Set(['.']);
  for (const p of paths) for (let d = posix.dirname(p); d !== '.'; d = posix.dirname(d)) dirs.add(d);
  for (const d of [...dirs].sort()) {
    await mkdir(join(dir, d));
    await chmod(join(dir, d), (await lstat(join(over, d))).mode & 0o7777);
  }
  const child = spawn('xargs', ['-0', '-I{}', 'mknod', '{}', 'c', '0', '0'], { cwd: dir, stdio: ['pipe', 'ignore', 'pipe'], ...(signal !== undefined ? { signal } : {}) });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  child.stdin.end(paths.map((p) => `${p}\0`).join(''));
  const code = await new Promise<number | null>((resolve, reject) => child.once('error', reject).once('close', resolve));
  if (code !== 0) throw new TsbuildError('SANDBOX', `cannot hide .dockerignore'd entries from a bind mount: ${stderr.trim()}`, { hint: 'whiteouts need root (mknod)' });
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
export async function bindMount(b: BindSource, target: string, readonly: boolean, workRoot: string, n: number, signal?: AbortSignal): Promise<SandboxMount> {
  if (b.kind === 'file') {
    if (readonly) return { type: 'bind', source: b.hostPath, target, readonly };
    const copy = join(workRoot, `rw-${n}`);
    await copyFile(b.hostPath, copy);
    return { type: 'bind', source: copy, target, readonly: false };
  }
  if (b.hidden !== undefined) {
    // The context dir with the ignored entries whited out: what BuildKit's transferred context shows.
    const mask = join(workRoot, `hide-${n}`);
    await whiteoutDir(mask, b.layers[0] ?? '', b.hidden, signal);
    return { type: 'layers', sources: [mask, ...b.layers], target, readonly };
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
