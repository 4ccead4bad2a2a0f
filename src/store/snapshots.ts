/**
 * One unpacked directory per layer, used directly as an overlay lowerdir.
 *
 * Naming: `snapshots/<first 12 hex of diffID>` with the full diffID in the sibling file
 * `<12 hex>.id` (metadata cannot live inside the dir: it would show in the overlay view). Short
 * names keep `lowerdir=` under the 4 KiB mount-option limit for ~100 layers. If a different
 * diffID already owns a prefix (a chance or crafted 48-bit collision), that layer uses the full
 * 64-hex name instead, so a prefix collision can never make one layer's snapshot stand in for
 * another's. Claiming a name happens under the store lock; filling happens outside it.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, utimesSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, isDigest, type Digest } from '../image/digest.js';
import { errnoCode } from '../util/errors.js';
import { tmpName, writeAtomic } from '../util/fs.js';
import { rethrowNoSpace } from './nospace.js';
import type { Signal, Snapshots } from './types.js';

type WithLock = <T>(fn: () => Promise<T>, options?: Signal) => Promise<T>;

const SHORT = 12;

export function createSnapshots(root: string, tmpDir: string, withLock: WithLock): Snapshots {
  const dir = join(root, 'snapshots');
  const shortPath = (d: Digest): string => join(dir, digestHex(d).slice(0, SHORT));
  const markerPath = (d: Digest): string => `${shortPath(d)}.id`;
  const longPath = (d: Digest): string => join(dir, digestHex(d));

  function owner(d: Digest): string | undefined {
    try {
      return readFileSync(markerPath(d), 'utf8').trim();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  function path(d: Digest): string {
    if (existsSync(longPath(d))) return longPath(d); // a collision fallback outlives the prefix owner
    const o = owner(d);
    return o === undefined || o === d ? shortPath(d) : longPath(d);
  }

  // The single metadata calls below are synchronous (a thread-pool round trip costs more than the
  // call; see util/fs.ts writeAtomic); still promises, so failures stay rejections.
  async function isDir(p: string): Promise<boolean> {
    await Promise.resolve();
    return statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
  }

  async function discard(p: string): Promise<void> {
    // Rename first so a half-deleted tree is never visible under a snapshot name.
    const aside = join(tmpDir, tmpName('discard'));
    try {
      renameSync(p, aside);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    await rm(aside, { recursive: true, force: true });
  }

  /** Marks a snapshot recently used: prune's grace period spares it (see gc.ts). */
  async function touch(p: string): Promise<void> {
    await Promise.resolve();
    const now = new Date();
    utimesSync(p, now, now);
  }

  async function has(d: Digest): Promise<boolean> {
    if (owner(d) === d && (await isDir(shortPath(d)))) return true;
    return isDir(longPath(d));
  }

  /** Moves a filled dir into place; first claimant wins and later ones discard their copy. */
  async function claim(d: Digest, filled: string, options: Signal): Promise<string> {
    return withLock(async () => {
      mkdirSync(dir, { recursive: true });
      const o = owner(d);
      const target = (o === undefined || o === d) && !(await isDir(longPath(d))) ? shortPath(d) : longPath(d);
      if (o === undefined && target === shortPath(d)) {
        await discard(target); // a dir without marker is debris from a crash
        await writeAtomic(markerPath(d), `${d}\n`, { tmpDir });
      }
      if (await isDir(target)) {
        await rm(filled, { recursive: true, force: true });
      } else {
        await rename(filled, target);
      }
      await touch(target);
      return target;
    }, options);
  }

  return {
    path,
    has,
    async ensure(d, fill, options = {}) {
      if (await has(d)) {
        await touch(path(d));
        return path(d);
      }
      await mkdir(tmpDir, { recursive: true });
      const work = join(tmpDir, tmpName('snap'));
      await mkdir(work, { mode: 0o755 });
      try {
        // Filled outside the snapshots dir and renamed in whole: a half-extracted snapshot never
        // carries a snapshot name, even if this process is killed mid-fill.
        await fill(work, options.signal);
        options.signal?.throwIfAborted();
        return await claim(d, work, options);
      } catch (err) {
        return rethrowNoSpace(root, `unpacking layer ${d}`)(err);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    async adopt(d, from, options = {}) {
      if (await has(d)) {
        await rm(from, { recursive: true, force: true });
        return path(d);
      }
      return claim(d, from, options);
    },
    async remove(d, options = {}) {
      await withLock(async () => {
        if (await isDir(longPath(d))) await discard(longPath(d));
        else if (owner(d) === d) {
          await discard(shortPath(d));
          await rm(markerPath(d), { force: true });
        }
      }, options);
    },
    async list() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return [];
        throw err;
      }
      const out: Digest[] = [];
      for (const name of names.sort()) {
        if (name.endsWith('.id')) {
          const d = (await readFile(join(dir, name), 'utf8')).trim();
          if (isDigest(d) && existsSync(shortPath(d))) out.push(d);
        } else if (name.length === 64 && isDigest(`sha256:${name}`)) {
          out.push(`sha256:${name}` as Digest);
        }
      }
      return out;
    },
  };
}
