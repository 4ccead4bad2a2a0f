/**
 * A read-only view of a rootfs made of stacked snapshot dirs (top-most first), with overlayfs
 * semantics: a 0/0 character device hides lower entries, an opaque dir hides lower children.
 * Symlinks resolve *inside* the root (securejoin semantics): `..` and absolute targets never leave it.
 * Used for COPY destinations, `COPY --from` sources and WORKDIR, without mounting anything.
 */
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { TsbuildError } from '../util/errors.js';
import { lstatOrUndefined } from '../util/fs.js';
import { isOverlayOpaque } from '../util/xattr.js';

const MAX_SYMLINKS = 40;

export interface ViewEntry {
  /** Canonical absolute path inside the rootfs ('/' for the root). */
  path: string;
  stat: Stats;
  /** Host path holding this entry's bytes/attributes (the top-most layer that has it). */
  hostPath: string;
  /** For directories: the host dirs that contribute children, top-most first (stops at opaque). */
  dirLayers: string[];
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}


export class RootfsView {
  readonly #layers: string[];

  constructor(layersTopFirst: string[]) {
    this.#layers = layersTopFirst;
  }

  root(): ViewEntry | undefined {
    return this.#childOf(undefined, '/');
  }

  /** Looks up one child name inside a directory entry, with overlay precedence. */
  async child(dir: ViewEntry, name: string): Promise<ViewEntry | undefined> {
    const childPath = posix.join(dir.path, name);
    for (let i = 0; i < dir.dirLayers.length; i++) {
      const layerDir = dir.dirLayers[i] as string;
      const host = join(layerDir, name);
      const st = await lstatOrUndefined(host);
      if (st === undefined) continue;
      if (isWhiteout(st)) return undefined;
      if (!st.isDirectory()) return { path: childPath, stat: st, hostPath: host, dirLayers: [] };
      const dirLayers: string[] = [];
      for (let j = i; j < dir.dirLayers.length; j++) {
        const candidate = join(dir.dirLayers[j] as string, name);
        const cst = j === i ? st : await lstatOrUndefined(candidate);
        if (cst === undefined) continue;
        if (!cst.isDirectory()) break; // a lower non-dir or whiteout is hidden by this dir
        dirLayers.push(candidate);
        if (isOverlayOpaque(candidate)) break;
      }
      return { path: childPath, stat: st, hostPath: host, dirLayers };
    }
    return undefined;
  }

  /**
   * Resolves `path` component by component. With `followFinal` false the last component is not
   * dereferenced (lstat semantics). Returns the canonical path even when the entry is missing,
   * so callers can create it at the right place.
   */
  async resolve(path: string, followFinal = true): Promise<{ path: string; entry: ViewEntry | undefined }> {
    let links = 0;
    const pending = splitPath(path);
    let current = this.root();
    let currentPath = '/';
    const stack: ViewEntry[] = [];
    while (pending.length > 0) {
      const name = pending.shift() as string;
      if (name === '..') {
        current = stack.pop() ?? this.root();
        currentPath = current?.path ?? '/';
        continue;
      }
      const nextPath = posix.join(currentPath, name);
      const next = current !== undefined && current.stat.isDirectory() ? await this.child(current, name) : undefined;
      if (next?.stat.isSymbolicLink() && (pending.length > 0 || followFinal)) {
        if (++links > MAX_SYMLINKS) throw new TsbuildError('CONTEXT', `too many levels of symbolic links resolving ${path}`);
        const target = await readlink(next.hostPath);
        pending.unshift(...splitPath(target));
        if (target.startsWith('/')) {
          stack.length = 0;
          current = this.root();
          currentPath = '/';
        }
        continue;
      }
      if (next === undefined) {
        // Missing: the rest of the path is taken literally below the last existing dir.
        return { path: posix.join(nextPath, ...pending), entry: undefined };
      }
      if (current !== undefined) stack.push(current);
      current = next;
      currentPath = nextPath;
    }
    return { path: currentPath, entry: current };
  }

  /** Merged directory listing (names only), honouring whiteouts and opaque dirs. */
  async list(dir: ViewEntry): Promise<string[]> {
    const seen = new Set<string>();
    const hidden = new Set<string>();
    for (const layerDir of dir.dirLayers) {
      for (const dirent of await readdir(layerDir, { withFileTypes: true })) {
        if (seen.has(dirent.name) || hidden.has(dirent.name)) continue;
        if (dirent.isCharacterDevice() && isWhiteout(await lstat(join(layerDir, dirent.name)))) {
          hidden.add(dirent.name);
          continue;
        }
        seen.add(dirent.name);
      }
    }
    return [...seen].sort();
  }

  #childOf(_parent: undefined, path: string): ViewEntry | undefined {
    // The root always exists as a directory, even for FROM scratch (no layers).
    const dirLayers: string[] = [];
    for (const layer of this.#layers) {
      dirLayers.push(layer);
      if (isOverlayOpaque(layer)) break;
    }
    return { path, stat: rootStat, hostPath: this.#layers[0] ?? '/nonexistent', dirLayers };
  }
}

export function splitPath(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/** A synthetic stat for the root of an empty rootfs: a root-owned 0755 directory. */
const rootStat = {
  isDirectory: () => true,
  isSymbolicLink: () => false,
  isFile: () => false,
  mode: 0o40755,
  uid: 0,
  gid: 0,
} as unknown as Stats;
