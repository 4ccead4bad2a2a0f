/**
 * Scoped path resolution with containerd `fs.RootPath` semantics: every component is looked up
 * with lstat *inside* the root; a symlink is followed by splicing its target into the remaining
 * path, where an absolute target restarts at the root and `..` never climbs above the root.
 * So a symlink planted by this or an earlier layer can only ever point somewhere inside the
 * root, and nothing reached through the result can be outside it.
 *
 * Threat model: the tar is hostile, the filesystem is not concurrently modified by an attacker
 * (extraction targets are private dirs), so lstat-then-act is race-free enough.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, TsbuildError } from '../util/errors.js';

const MAX_LINKS = 255;
/**
 * Work one resolution may do: lstat calls, plus half a target's length for each link spliced in.
 * A path is at most 4096 bytes (2048 components); a hostile layer chaining long link targets must
 * not make every entry cost millions of lookups (it did: ~0.5 s per entry).
 */
const MAX_LOOKUPS = 8192;

/** Tar name → components, with `.`/empty dropped and `..` clamped at the root. */
export function cleanComponents(name: string): string[] {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out;
}

/**
 * Resolves `parts` under `root`, following symlinks within the root for every component, and for
 * the last one only when `followFinal`. Returns components relative to the root; components past
 * the first missing one are kept literally.
 */
// Synchronous lstat/readlink: extraction resolves every entry's parents, and per-call thread-pool
// round trips dominated the unpack time of a many-file layer.
export function resolveInRoot(root: string, parts: string[], followFinal: boolean): string[] {
  return resolve(root, parts, followFinal).resolved;
}

/**
 * `resolveInRoot(root, parts, true)` for a directory about to be used as a parent, plus how many
 * leading components the lookup itself saw as directories, so the caller need not lstat them again.
 */
export function resolveDirInRoot(root: string, parts: string[]): { resolved: string[]; existingDirs: number } {
  return resolve(root, parts, true);
}

function resolve(root: string, parts: string[], followFinal: boolean): { resolved: string[]; existingDirs: number } {
  const resolved: string[] = [];
  let existingDirs = 0; // leading entries of `resolved` that lstat showed to be directories
  let queue = [...parts];
  let links = 0;
  let lookups = 0;
  // Where the first missing component sits in `resolved`: past it nothing exists, so later
  // components are taken as written; a `..` back above it makes lookups real again.
  let missingAt = -1;
  while (queue.length > 0) {
    const part = queue.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      existingDirs = Math.min(existingDirs, resolved.length);
      if (resolved.length <= missingAt) missingAt = -1;
      continue;
    }
    const isFinal = queue.length === 0;
    if (missingAt >= 0 || (isFinal && !followFinal)) {
      resolved.push(part);
      continue;
    }
    if (++lookups > MAX_LOOKUPS) throw tooLong(parts, 'too many path components');
    const candidate = join(root, ...resolved, part);
    let isLink = false;
    let isDir = false;
    try {
      const st = lstatSync(candidate);
      isLink = st.isSymbolicLink();
      isDir = st.isDirectory();
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      missingAt = resolved.length;
    }
    if (!isLink) {
      if (isDir && existingDirs === resolved.length) existingDirs++;
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw tooLong(parts, 'too many levels of symbolic links');
    const target = readlinkSync(candidate);
    if (target.startsWith('/')) {
      resolved.length = 0;
      existingDirs = 0;
    }
    // Link targets count against the same budget: each splice walks the whole target.
    lookups += target.length >>> 1;
    if (lookups > MAX_LOOKUPS) throw tooLong(parts, 'too many path components');
    queue = spliceClean(target, queue);
  }
  return { resolved, existingDirs };
}

/**
 * A symlink's target followed by the rest of the path, cleaned lexically as containerd's RootPath
 * joins them (`x/..` cancels without a lookup of x). Only leading `..` stay: they climb out of
 * `resolved`, whose components were all looked up and are real directories, so the lexical `..`
 * is the one the kernel would take there.
 */
function spliceClean(target: string, rest: string[]): string[] {
  const out: string[] = [];
  let climbs = 0;
  for (const part of [...target.split('/'), ...rest]) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.length > 0) out.pop();
    else climbs++;
  }
  return climbs === 0 ? out : [...Array<string>(climbs).fill('..'), ...out];
}

function tooLong(parts: string[], why: string): TsbuildError {
  const path = parts.join('/');
  return new TsbuildError('LAYER', `${why} resolving ${path.length > 200 ? `${path.slice(0, 200)}...` : path}`);
}

export function underRoot(root: string, parts: string[]): string {
  return parts.length === 0 ? root : join(root, ...parts);
}
