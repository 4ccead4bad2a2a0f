/**
 * COPY / ADD: sources from the context (uid/gid reset to 0), from a stage/image rootfs
 * (ownership kept), ADD URLs (downloaded into the blob store) and ADD archives (unpacked),
 * staged into a fresh dir that becomes the layer and its snapshot. The cache input is the
 * digest of exactly the selected sources (a URL: its --checksum, else its content digest).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Digest } from '../image/index.js';
import type { AddInstruction, CopyInstruction } from '../parser/types.js';
import { TsbuildError } from '../util/errors.js';
import { detectArchive, unpackArchive, type ArchiveFormat } from './add-archive.js';
import { contextItem, excluder, EXPLAIN_FILES, hashItems, hostDirItem, viewItem, withParents, type Excluder, type SourceItem } from './add-sources.js';
import { downloadToBlob, isGitSource, isUrl, parseChecksum, unusableFileName, urlFileName } from './add-url.js';
import { heredocFileName } from './heredoc-name.js';
import { normaliseSource, type BuildContext } from './context.js';
import { loadReuse, lineageOf, saveReuse, StagedFiles } from './copy-reuse.js';
import { stageCopy, type ChmodSpec, type CopyItem } from './copy.js';
import { lstatFile } from '../util/filestat.js';
import type { Expander } from './expand.js';
import { hasWildcard, matchComponent } from './match.js';
import { RootfsView } from './rootfs.js';
import type { StageState } from './state.js';
import { commitStepLayer, lowerDirsOf, resolveDest, type Prepared, type StepDelta, type StepEnv } from './steps.js';
import { resolveChown } from './users.js';

/** One source in order: a ready item (maybe an archive to unpack) or a URL to fetch. */
type Pending =
  | { item: SourceItem; archive?: ArchiveFormat; label: string }
  | { url: string; name: string; downloaded?: { digest: Digest; mtimeMs: number } };

export async function prepareCopy(ins: CopyInstruction | AddInstruction, state: StageState, env: StepEnv, x: Expander): Promise<Prepared> {
  const isAdd = ins.kind === 'ADD';
  const sources = ins.sources.map((s) => x.word(s));
  const destText = x.word(ins.dest);
  const chown = ins.chown !== undefined ? x.word(ins.chown) : undefined;
  const chmodText = ins.chmod !== undefined ? x.word(ins.chmod) : undefined;
  const chmod = chmodText !== undefined ? parseChmod(chmodText) : undefined;
  const excludes = ins.exclude.map((p) => x.word(p));
  const heredocs = ins.heredocs.map((h) => ({ name: h.name, file: heredocFileName(h.name), content: h.expand ? x.raw(h.content) : h.content }));
  const exclude = excluder(excludes);
  const parents = ins.kind === 'COPY' && ins.parents === true;
  const checksum = isAdd && ins.checksum !== undefined ? parseChecksum(x.word(ins.checksum)) : undefined;
  const unpack = isAdd ? ins.unpack : false;
  checkSources(ins.kind, sources, checksum !== undefined);
  const from = ins.kind === 'COPY' ? ins.from : undefined;
  const fromState = from !== undefined ? await env.stageState(from) : undefined;
  const dest = resolveDest(state, destText);
  const lowerDirs = lowerDirsOf(state, env.store);

  const hash = createHash('sha256');
  const files = new Map<string, string>(); // for --explain-cache only (not in the key)
  const pending: Pending[] = [];
  if (fromState !== undefined) {
    const view = new RootfsView(lowerDirsOf(fromState, env.store));
    for (const s of sources) pending.push(...(await viewSources(view, s, exclude, parents)));
    hash.update(`from:${fromState.key}\n`);
  } else {
    for (const s of sources) {
      if (isUrl(s)) {
        const name = urlFileName(new URL(s));
        await checkUrlFileName(s, name, dest, lowerDirs);
        if (checksum !== undefined) {
          hash.update(`url:${s}\0${checksum}\n`);
          pending.push({ url: s, name });
        } else {
          const d = await downloadToBlob(env.store, s, env.signal !== undefined ? { signal: env.signal } : {});
          hash.update(`url:${s}\0${d.digest}\n`);
          pending.push({ url: s, name, downloaded: d });
        }
        continue;
      }
      const items = await contextSources(env.context, s, exclude, parents, env.signal);
      await hashItems(hash, items, env.signal, files);
      for (const item of items) {
        // Local archives are unpacked unless --unpack=false (detected by content, as BuildKit).
        const archive = isAdd && unpack !== false && item.kind === 'file' ? await detectArchive(item.hostPath, env.signal) : undefined;
        if (archive !== undefined) hash.update(`unpack:${archive}\n`);
        pending.push({ item, label: s, ...(archive !== undefined ? { archive } : {}) });
      }
    }
  }
  for (const h of heredocs) hash.update(`heredoc:${h.name}:${h.content}\n`);
  // Several sources and a destination without a slash: no classic-builder error; BuildKit copies
  // each source to that path in turn (docs/buildkit-semantics.md §4), and so does stageCopy.
  const hasArchive = pending.some((p) => 'archive' in p && p.archive !== undefined);
  const flags = [parents ? '--parents' : '', chown !== undefined ? `--chown=${chown}` : '', chmodText !== undefined ? `--chmod=${chmodText}` : ''].filter((f) => f !== '');
  const createdBy = [ins.kind, ...flags, ...sources, ...heredocs.map((h) => `<<${h.name}`), destText].join(' ');
  const inputs = {
    parent: state.key,
    platform: `${env.platform.os}/${env.platform.architecture}`,
    instruction: `${createdBy} -> ${dest.path}${dest.isDir ? '/' : ''}`,
    env: [],
    content: `sha256:${hash.digest('hex')}`,
    extra: { chown: chown ?? '', user: state.config.config?.User ?? '', exclude: JSON.stringify(excludes), unpack: String(unpack ?? '') },
    ...(files.size <= EXPLAIN_FILES ? { files: Object.fromEntries(files) } : {}),
  };
  const lineage = lineageOf(inputs, env.sourceDateEpoch);
  const apply = async (): Promise<StepDelta> => {
    const staging = await mkdtemp(join(env.store.tmpDir, 'copy-'));
    const scratch: string[] = [];
    const temp = async (prefix: string): Promise<string> => {
      const dir = await mkdtemp(join(env.store.tmpDir, prefix));
      scratch.push(dir);
      return dir;
    };
    try {
      const view = new RootfsView(lowerDirs);
      const owner = chown !== undefined ? await resolveChown(view, chown) : undefined;
      const all: CopyItem[] = [];
      let unpacked = hasArchive;
      for (const p of pending) {
        if ('item' in p) {
          if (p.archive === undefined) all.push(p.item);
          else all.push(await unpackToItem(p.item.hostPath, p.archive, p.label, await temp('unpack-'), env.signal));
          continue;
        }
        const d = p.downloaded ?? (await downloadToBlob(env.store, p.url, { ...(checksum !== undefined ? { expected: checksum } : {}), ...(env.signal !== undefined ? { signal: env.signal } : {}) }));
        const file: CopyItem = { name: p.name, hostPath: env.store.blobs.path(d.digest), kind: 'file', mode: 0o600, uid: 0, gid: 0, mtimeMs: d.mtimeMs };
        // URLs are unpacked only with an explicit --unpack=true.
        const archive = unpack === true ? await detectArchive(file.hostPath, env.signal) : undefined;
        if (archive === undefined) all.push(file);
        else {
          unpacked = true;
          all.push(await unpackToItem(file.hostPath, archive, p.url, await temp('unpack-'), env.signal));
        }
      }
      if (heredocs.length > 0) {
        const dir = await temp('heredoc-');
        for (const h of heredocs) {
          const path = join(dir, h.file);
          await writeFile(path, h.content, { mode: 0o644 });
          all.push({ name: h.file, hostPath: path, kind: 'file', mode: 0o644, uid: 0, gid: 0, mtimeMs: Date.now() });
        }
      }
      const epochMs = env.sourceDateEpoch !== undefined ? env.sourceDateEpoch * 1000 : undefined;
      // --no-cache means a genuine rebuild: nothing taken from an earlier snapshot either.
      const reuse = env.noCache === true ? undefined : await loadReuse(env.store, lineage);
      const staged = new StagedFiles(reuse);
      await stageCopy(all, {
        staging,
        view,
        dest: dest.path,
        // An archive is always unpacked into a directory, trailing slash or not.
        destIsDir: dest.isDir || unpacked,
        ...(owner !== undefined ? { chown: owner } : {}),
        ...(chmod !== undefined ? { chmod } : {}),
        ...(epochMs !== undefined ? { mtimeMs: epochMs } : {}),
        ...(reuse !== undefined ? { reuse } : {}),
        staged,
        ...(env.signal !== undefined ? { signal: env.signal } : {}),
      });
      const delta = await commitStepLayer(env, staging, [], `${createdBy} # buildkit`);
      if (staged.size > 0 && delta.layer !== undefined) await saveReuse(env.store, lineage, delta.layer.diffId, staged);
      return delta;
    } finally {
      await rm(staging, { recursive: true, force: true });
      for (const dir of scratch) await rm(dir, { recursive: true, force: true });
    }
  };
  return { state, inputs, apply };
}

/**
 * A URL's file name matters only when the file lands in a directory (a trailing slash, or a dir
 * the rootfs already has there); then a name such as `..` is refused before anything is fetched.
 */
async function checkUrlFileName(url: string, name: string, dest: { path: string; isDir: boolean }, lowerDirs: string[]): Promise<void> {
  const why = unusableFileName(name);
  if (why === undefined) return;
  const intoDir = dest.isDir || (await new RootfsView(lowerDirs).resolve(dest.path, true)).entry?.stat.isDirectory() === true;
  if (!intoDir) return;
  throw new TsbuildError('DOCKERFILE', `ADD ${url}: the file name ${JSON.stringify(name)} (the last segment of the URL path) is not usable: ${why}`, {
    hint: `name the file in the destination (ADD ${url} ${dest.path === '/' ? '' : dest.path}/NAME)`,
  });
}

async function unpackToItem(path: string, format: ArchiveFormat, label: string, dir: string, signal?: AbortSignal): Promise<CopyItem> {
  await unpackArchive(path, format, dir, label, signal);
  return hostDirItem(dir, '');
}

function checkSources(kind: 'COPY' | 'ADD', sources: string[], hasChecksum: boolean): void {
  for (const s of sources) {
    if (kind === 'COPY' && isGitSource(s)) throw new TsbuildError('DOCKERFILE', 'source can\'t be a git ref for COPY');
    if (kind === 'COPY' && isUrl(s)) throw new TsbuildError('DOCKERFILE', 'source can\'t be a URL for COPY');
    if (isGitSource(s)) throw new TsbuildError('DOCKERFILE', `ADD ${s}: git sources are not supported by tsbuild`, { hint: 'clone the repository into the build context and COPY it' });
    if (isUrl(s) && !/^https?:\/\//i.test(s)) throw new TsbuildError('DOCKERFILE', `ADD ${s}: unsupported URL scheme (http and https only)`);
  }
  if (hasChecksum && (sources.length !== 1 || !/^https?:\/\//i.test(sources[0] ?? ''))) {
    throw new TsbuildError('DOCKERFILE', '--checksum can only be used with a single HTTP(S) source');
  }
}

/** Components below the `/./` pivot of a --parents source (all of them without a pivot). */
function pivotDepth(source: string): number {
  const i = source.indexOf('/./');
  return i < 0 ? 0 : normaliseSource(source.slice(0, i)).length;
}

async function contextSources(context: BuildContext, s: string, exclude: Excluder | undefined, parents: boolean, signal?: AbortSignal): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for (const entry of await context.resolveSource(s)) {
    const name = entry.rel.split('/').pop() ?? '';
    if (entry.rel !== '' && exclude?.(name) === true) continue;
    const item = contextItem(context, entry, exclude, '', signal);
    if (!parents) {
      out.push(item);
      continue;
    }
    const all = entry.rel === '' ? [] : entry.rel.split('/');
    const skip = pivotDepth(s);
    const components = all.slice(skip);
    out.push(withParents(item, components, async (depth) => {
      const rel = all.slice(0, skip + depth + 1).join('/');
      const hostPath = join(context.dir, rel);
      return contextItem(context, { rel, hostPath, stat: await lstatFile(hostPath) }, undefined, '', signal);
    }));
  }
  return out;
}

/** Wildcards in a `--from` source, matched component by component like the context's. */
async function viewMatches(view: RootfsView, s: string): Promise<string[]> {
  const parts = s.split('/').filter((p) => p !== '' && p !== '.');
  if (!parts.some(hasWildcard)) return [`/${parts.join('/')}`];
  let candidates = ['/'];
  for (const part of parts) {
    const next: string[] = [];
    for (const prefix of candidates) {
      if (!hasWildcard(part)) {
        next.push(posix.join(prefix, part));
        continue;
      }
      const { entry } = await view.resolve(prefix, true);
      if (entry === undefined || !entry.stat.isDirectory()) continue;
      for (const name of await view.list(entry)) if (matchComponent(part, name)) next.push(posix.join(prefix, name));
    }
    candidates = next;
  }
  return candidates;
}

async function viewSources(view: RootfsView, s: string, exclude: Excluder | undefined, parents: boolean): Promise<Pending[]> {
  const out: Pending[] = [];
  const wildcard = s.split('/').some(hasWildcard);
  for (const match of await viewMatches(view, s)) {
    const { entry } = await view.resolve(match, true);
    // A wildcard may match nothing (BuildKit AllowEmptyWildcard); a plain path must exist.
    if (entry === undefined && wildcard) continue;
    out.push(...(await viewSource(view, match, s, exclude, parents)));
  }
  return out;
}

async function viewSource(view: RootfsView, match: string, s: string, exclude: Excluder | undefined, parents: boolean): Promise<Pending[]> {
  const { entry, path } = await view.resolve(match, true);
  if (entry === undefined) throw new TsbuildError('CONTEXT', `"${s}": not found in the source stage`);
  if (entry.path !== '/' && exclude?.(entry.path.split('/').pop() ?? '') === true) return [];
  const item = viewItem(view, entry, exclude, '');
  if (!parents) return [{ item, label: s }];
  const all = path.split('/').filter((p) => p !== '');
  const skip = pivotDepth(s);
  const wrapped = withParents(item, all.slice(skip), async (depth) => {
    const dir = await view.resolve(`/${all.slice(0, skip + depth + 1).join('/')}`, true);
    if (dir.entry === undefined) throw new TsbuildError('CONTEXT', `"${s}": parent vanished in the source stage`);
    return viewItem(view, dir.entry, undefined, '');
  });
  return [{ item: wrapped, label: s }];
}

const WHO = { u: 0o4700, g: 0o2070, o: 0o1007 } as const;

/**
 * `--chmod`: octal up to 07777, or symbolic clauses (`u+x`, `go-w`, `a=rX`, `u+s`), applied to
 * each node's own mode as chmod(1) does (no umask: an empty "who" means all).
 */
export function parseChmod(text: string): ChmodSpec {
  const invalid = (): TsbuildError => new TsbuildError('DOCKERFILE', `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);
  if (/^[0-7]+$/.test(text)) {
    const n = parseInt(text, 8);
    if (n > 0o7777) throw invalid();
    return n;
  }
  const clauses = text.split(',').map((c) => {
    const m = /^([ugoa]*)((?:[-+=][rwxXst]*)+)$/.exec(c);
    if (m === null) throw invalid();
    const who = m[1] === '' || (m[1] ?? '').includes('a') ? 'ugo' : (m[1] ?? '');
    const mask = [...who].reduce((acc, w) => acc | WHO[w as keyof typeof WHO], 0);
    return { mask, ops: [...(m[2] ?? '').matchAll(/([-+=])([rwxXst]*)/g)].map((o) => ({ op: o[1] ?? '+', perms: o[2] ?? '' })) };
  });
  return (mode, isDir) => {
    let m = mode & 0o7777;
    for (const { mask, ops } of clauses) {
      for (const { op, perms } of ops) {
        let bits = 0;
        for (const p of perms) {
          if (p === 'r') bits |= 0o444;
          else if (p === 'w') bits |= 0o222;
          else if (p === 'x' || (p === 'X' && (isDir || (m & 0o111) !== 0))) bits |= 0o111;
          else if (p === 's') bits |= 0o6000;
          else if (p === 't') bits |= 0o1000;
        }
        bits &= mask;
        if (op === '+') m |= bits;
        else if (op === '-') m &= ~bits;
        else m = (m & ~(mask & 0o777)) | bits;
      }
    }
    return m;
  };
}
