/**
 * COPY / ADD: sources from the context (uid/gid reset to 0) or from a stage/image rootfs
 * (ownership kept), staged into a fresh dir that becomes the layer and its snapshot.
 * The cache input is the digest of exactly the selected sources.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddInstruction, CopyInstruction } from '../parser/types.js';
import { TsbuildError } from '../util/errors.js';
import type { BuildContext, ContextEntry } from './context.js';
import { stageCopy, type CopyItem } from './copy.js';
import type { Expander } from './expand.js';
import { RootfsView, type ViewEntry } from './rootfs.js';
import type { StageState } from './state.js';
import { commitStepLayer, lowerDirsOf, resolveDest, type Prepared, type StepDelta, type StepEnv } from './steps.js';
import { resolveChown } from './users.js';

export async function prepareCopy(ins: CopyInstruction | AddInstruction, state: StageState, env: StepEnv, x: Expander): Promise<Prepared> {
  const sources = ins.sources.map((s) => x.word(s));
  const destText = x.word(ins.dest);
  const chown = ins.chown !== undefined ? x.word(ins.chown) : undefined;
  const chmodText = ins.chmod !== undefined ? x.word(ins.chmod) : undefined;
  const chmod = chmodText !== undefined ? parseChmod(chmodText) : undefined;
  for (const s of sources) {
    if (/^[a-z]+:\/\//i.test(s) || s.startsWith('git@')) {
      throw new TsbuildError('DOCKERFILE', ins.kind === 'COPY' ? 'source can\'t be a URL for COPY' : 'ADD of URLs and git sources is not supported yet');
    }
  }
  const from = ins.kind === 'COPY' ? ins.from : undefined;
  const fromState = from !== undefined ? await env.stageState(from) : undefined;
  const dest = resolveDest(state, destText);
  const lowerDirs = lowerDirsOf(state, env.store);

  const hash = createHash('sha256');
  let items: CopyItem[];
  if (fromState !== undefined) {
    const view = new RootfsView(lowerDirsOf(fromState, env.store));
    items = [];
    for (const s of sources) items.push(...(await viewItems(view, s)));
    hash.update(`from:${fromState.key}\n`);
  } else {
    items = [];
    for (const s of sources) {
      for (const entry of await env.context.resolveSource(s)) {
        const item = contextItem(env.context, entry, env.signal);
        items.push(item);
        await hashItem(hash, env.context, entry, env.signal);
      }
    }
  }
  for (const h of ins.heredocs) hash.update(`heredoc:${h.name}:${h.content}\n`);
  const flags = [ins.kind === 'COPY' && ins.parents === true ? '--parents' : '', chown !== undefined ? `--chown=${chown}` : '', chmodText !== undefined ? `--chmod=${chmodText}` : ''].filter((f) => f !== '');
  const createdBy = [ins.kind, ...flags, ...sources, ...ins.heredocs.map((h) => `<<${h.name}`), destText].join(' ');
  const inputs = {
    parent: state.key,
    platform: `${env.platform.os}/${env.platform.architecture}`,
    instruction: `${createdBy} -> ${dest.path}${dest.isDir ? '/' : ''}`,
    env: [],
    content: `sha256:${hash.digest('hex')}`,
    extra: { chown: chown ?? '', user: state.config.config?.User ?? '' },
  };
  const apply = async (): Promise<StepDelta> => {
    const staging = await mkdtemp(join(env.store.tmpDir, 'copy-'));
    const heredocDir = ins.heredocs.length > 0 ? await mkdtemp(join(env.store.tmpDir, 'heredoc-')) : undefined;
    try {
      const view = new RootfsView(lowerDirs);
      const owner = chown !== undefined ? await resolveChown(view, chown) : undefined;
      const all = [...items];
      if (heredocDir !== undefined) {
        for (const h of ins.heredocs) {
          const p = join(heredocDir, h.name);
          await writeFile(p, h.content, { mode: 0o644 });
          all.push({ name: h.name, hostPath: p, kind: 'file', mode: 0o644, uid: 0, gid: 0, mtimeMs: Date.now() });
        }
      }
      const epochMs = env.sourceDateEpoch !== undefined ? env.sourceDateEpoch * 1000 : undefined;
      await stageCopy(all, {
        staging,
        view,
        dest: dest.path,
        destIsDir: dest.isDir || all.length > 1,
        ...(owner !== undefined ? { chown: owner } : {}),
        ...(chmod !== undefined ? { chmod } : {}),
        ...(epochMs !== undefined ? { mtimeMs: epochMs } : {}),
        ...(env.signal !== undefined ? { signal: env.signal } : {}),
      });
      return await commitStepLayer(env, staging, [], `${createdBy} # buildkit`);
    } finally {
      await rm(staging, { recursive: true, force: true });
      if (heredocDir !== undefined) await rm(heredocDir, { recursive: true, force: true });
    }
  };
  return { state, inputs, apply };
}

function contextItem(context: BuildContext, entry: ContextEntry, signal?: AbortSignal): CopyItem {
  const s = entry.stat;
  const name = entry.rel.split('/').pop() ?? '';
  const kind = s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'symlink' : 'other';
  const item: CopyItem = { name, hostPath: entry.hostPath, kind, mode: Number(s.mode), uid: 0, gid: 0, mtimeMs: Number(s.mtimeMs) };
  if (kind === 'dir') {
    item.children = flatChildren(context, entry, signal);
  }
  return item;
}

/** A context dir's children as copy items, each dir lazily listing its own. */
function flatChildren(context: BuildContext, dir: ContextEntry, signal?: AbortSignal): () => AsyncIterable<CopyItem> {
  return async function* () {
    for await (const child of context.children(dir, signal)) yield contextItem(context, child, signal);
  };
}

async function hashItem(hash: ReturnType<typeof createHash>, context: BuildContext, entry: ContextEntry, signal?: AbortSignal): Promise<void> {
  const line = async (e: ContextEntry): Promise<void> => {
    const s = e.stat;
    let data = '';
    if (s.isFile()) data = await context.fileDigest(e, signal);
    else if (s.isSymbolicLink()) data = await readlink(e.hostPath);
    hash.update(`${e.rel}\0${Number(s.mode)}\0${data}\n`);
  };
  await line(entry);
  if (entry.stat.isDirectory()) for await (const child of context.walk(entry, signal)) await line(child);
}

async function viewItems(view: RootfsView, source: string): Promise<CopyItem[]> {
  const { entry } = await view.resolve(source, true);
  if (entry === undefined) throw new TsbuildError('CONTEXT', `"${source}": not found in the source stage`);
  return [viewItem(view, entry)];
}

function viewItem(view: RootfsView, e: ViewEntry): CopyItem {
  const s = e.stat;
  const kind = s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'symlink' : 'other';
  const item: CopyItem = { name: e.path.split('/').pop() ?? '', hostPath: e.hostPath, kind, mode: s.mode, uid: s.uid, gid: s.gid, mtimeMs: s.mtimeMs };
  if (kind === 'dir') {
    item.children = async function* () {
      for (const name of await view.list(e)) {
        const child = await view.child(e, name);
        if (child !== undefined) yield viewItem(view, child);
      }
    };
  }
  return item;
}

export function parseChmod(text: string): number {
  if (!/^[0-7]{1,4}$/.test(text)) throw new TsbuildError('DOCKERFILE', `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);
  return parseInt(text, 8);
}
