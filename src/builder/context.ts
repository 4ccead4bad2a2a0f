/**
 * The build context: a host directory seen through .dockerignore. Resolves COPY/ADD sources
 * (wildcards, top-level symlinks followed *inside* the context), walks them, and computes the
 * content digest that goes into cache keys. File digests are memoised by (dev, ino, size, mtime,
 * ctime) so a warm build over a large context reads metadata only (filestat.ts: one native call
 * per directory, no BigInt).
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { cooperative } from '../util/cooperate.js';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { listDir, lstatFile, type FileStat } from '../util/filestat.js';
import { hasWildcard, matchComponent } from './match.js';

export interface IgnoreLike {
  ignores(relPath: string): boolean;
  mayMatchInside?(dirRelPath: string): boolean;
}

export interface StatMemo {
  get(key: string): string | undefined;
  set(key: string, digest: string): void;
}

/** One file-system entry selected for a copy; `rel` is relative to the context root, no leading slash. */
export interface ContextEntry {
  rel: string;
  hostPath: string;
  stat: FileStat;
}

const MAX_LINKS = 40;
/** Files up to this size are hashed from one synchronous read: a stream per small file costs more than the read. */
const SMALL_FILE = 256 * 1024;

export class BuildContext {
  readonly dir: string;
  readonly #ignore: IgnoreLike | undefined;
  readonly #memo: StatMemo | undefined;
  readonly #tick = cooperative();
  readonly #reincluded = new Map<string, boolean>();

  constructor(dir: string, options: { ignore?: IgnoreLike | undefined; memo?: StatMemo | undefined } = {}) {
    this.dir = dir;
    this.#ignore = options.ignore;
    this.#memo = options.memo;
  }

  /** A .dockerignore applies: some entries of the directory may be left out. */
  get filtered(): boolean {
    return this.#ignore !== undefined;
  }

  isIgnored(rel: string): boolean {
    return rel !== '' && (this.#ignore?.ignores(rel) ?? false);
  }

  /**
   * Expands one COPY source into the entries it names. Non-wildcard sources that do not exist
   * (or are ignored) are an error; wildcards may match nothing, as in BuildKit.
   */
  async resolveSource(source: string): Promise<ContextEntry[]> {
    const parts = normaliseSource(source);
    if (!parts.some(hasWildcard)) {
      const entry = await this.#lookup(parts, source);
      if (entry === undefined) throw notFound(source);
      return [entry];
    }
    let candidates: string[][] = [[]];
    for (const part of parts) {
      const next: string[][] = [];
      for (const prefix of candidates) {
        if (!hasWildcard(part)) {
          next.push([...prefix, part]);
          continue;
        }
        const dir = await this.#lookup(prefix, source);
        if (dir === undefined || !dir.stat.isDirectory()) continue;
        for (const name of (await readdir(dir.hostPath)).sort()) {
          if (matchComponent(part, name)) next.push([...prefix, name]);
        }
      }
      candidates = next;
    }
    const out: ContextEntry[] = [];
    for (const c of candidates) {
      const entry = await this.#lookup(c, source);
      if (entry !== undefined) out.push(entry);
    }
    return out;
  }

  /**
   * Direct children of a directory entry, sorted, with the ignore rules applied: an ignored
   * file is left out; an ignored directory is kept only when a `!` pattern re-includes something
   * below it (an excluded dir never comes back empty, as with fsutil's walker). The one rule
   * both hashing (`walk`) and copying use.
   */
  async *children(dir: ContextEntry, signal?: AbortSignal): AsyncGenerator<ContextEntry> {
    for (const child of this.childrenSync(dir)) {
      await this.#tick(signal);
      yield child;
    }
  }

  /** `children` as one array: synchronous metadata calls (util/cooperate.ts), no promise per entry. */
  childrenSync(dir: ContextEntry): ContextEntry[] {
    const out: ContextEntry[] = [];
    const { names, stats } = listDir(dir.hostPath);
    // join() per entry costs more than the stat: the parent is already normalised.
    const prefix = dir.hostPath.endsWith('/') ? dir.hostPath : `${dir.hostPath}/`;
    const relPrefix = dir.rel === '' ? '' : `${dir.rel}/`;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const stat = stats[i] as FileStat;
      const rel = relPrefix + name;
      const entry = { rel, hostPath: prefix + name, stat };
      if (this.#ignore !== undefined && this.isIgnored(rel) && !(stat.isDirectory() && (this.#ignore.mayMatchInside?.(rel) ?? false) && this.#keepsSomething(entry))) continue;
      out.push(entry);
    }
    return out;
  }

  /**
   * An excluded dir walked for a `!` exception: does anything below it come back? Memoised, so a
   * deep excluded tree (node_modules) is listed once for the answer, not once per level above it.
   */
  #keepsSomething(dir: ContextEntry): boolean {
    let kept = this.#reincluded.get(dir.rel);
    if (kept === undefined) {
      kept = this.childrenSync(dir).length > 0;
      this.#reincluded.set(dir.rel, kept);
    }
    return kept;
  }

  /** Recursively lists a directory entry's descendants (not itself), in `children` order. */
  async *walk(dir: ContextEntry, signal?: AbortSignal): AsyncGenerator<ContextEntry> {
    for await (const child of this.children(dir, signal)) {
      yield child;
      if (child.stat.isDirectory()) yield* this.walk(child, signal);
    }
  }

  /** sha256 of a regular file's content, memoised by stat identity. */
  async fileDigest(entry: ContextEntry, signal?: AbortSignal): Promise<string> {
    const known = this.fileDigestSync(entry);
    if (known !== undefined) return known;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(entry.hostPath, { signal })) hash.update(chunk as Buffer);
    return this.#remember(entry, hash);
  }

  /** The digest when it needs no streaming: a memo hit or a small file read at once; else undefined. */
  fileDigestSync(entry: ContextEntry): string | undefined {
    const known = this.#memo?.get(entry.stat.identity);
    if (known !== undefined || entry.stat.size > SMALL_FILE) return known;
    return this.#remember(entry, createHash('sha256').update(readFileSync(entry.hostPath)));
  }

  #remember(entry: ContextEntry, hash: Hash): string {
    const digest = `sha256:${hash.digest('hex')}`;
    this.#memo?.set(entry.stat.identity, digest);
    return digest;
  }

  /** Follows symlinks in every component, staying inside the context root (securejoin). */
  async #lookup(parts: string[], source: string): Promise<ContextEntry | undefined> {
    const pending = [...parts];
    const resolved: string[] = [];
    let links = 0;
    let stat = await lstatFile(this.dir);
    while (pending.length > 0) {
      const name = pending.shift() as string;
      if (name === '..') {
        resolved.pop();
        continue;
      }
      const hostPath = join(this.dir, ...resolved, name);
      try {
        stat = await lstatFile(hostPath);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
        throw err;
      }
      if (stat.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw new TsbuildError('CONTEXT', `too many symbolic links resolving ${source}`);
        const target = await readlink(hostPath);
        if (target.startsWith('/')) resolved.length = 0;
        pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
        continue;
      }
      resolved.push(name);
    }
    const rel = resolved.join('/');
    if (this.isIgnored(rel)) return undefined;
    return { rel, hostPath: join(this.dir, ...resolved), stat };
  }
}

/**
 * A COPY (or bind mount) source as components under the context root. `..` stops at the root, as
 * BuildKit cleans a source against "/": `COPY ../x` is the context's x (the classic builder refused it).
 */
export function normaliseSource(source: string): string[] {
  return posix.normalize(`/${source}`).split('/').filter((p) => p !== '');
}

function notFound(source: string): TsbuildError {
  return new TsbuildError('CONTEXT', `"${posix.normalize(`/${source}`)}": not found in the build context`, {
    hint: 'check the path and that .dockerignore does not exclude it',
  });
}
