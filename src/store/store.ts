import { homedir } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errnoCode, messageOf, TsbuildError } from '../util/errors.js';
import { createBlobStore } from './blobs.js';
import { createCacheIndex, createCompressionCache } from './cache.js';
import { withFileLock } from './lock.js';
import { createSnapshots } from './snapshots.js';
import { createTags, emptyIndex, readIndex, writeIndex } from './tags.js';
import { createProcessTmp, spreadStaging, sweepTmp } from './tmp.js';
import type { Signal, Store } from './types.js';

/** $TSBUILD_ROOT, else /var/lib/tsbuild for root, else $XDG_DATA_HOME/tsbuild or ~/.local/share/tsbuild. */
export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSBUILD_ROOT) return resolve(env.TSBUILD_ROOT);
  if (process.getuid?.() === 0) return '/var/lib/tsbuild';
  const data = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(data, 'tsbuild');
}

/** Opens (creating if needed) an OCI-layout store rooted at `root`. */
export async function openStore(root: string, options: Signal = {}): Promise<Store> {
  options.signal?.throwIfAborted();
  const abs = resolve(root);
  let tmpDir: string;
  try {
    // Synchronous: every command opens the store, and these are a handful of metadata calls that
    // each cost a thread-pool round trip asynchronously.
    for (const d of [join(abs, 'blobs', 'sha256'), join(abs, 'tmp'), join(abs, 'snapshots'), join(abs, 'cache')]) {
      mkdirSync(d, { recursive: true });
    }
    try {
      writeFileSync(join(abs, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}', { flag: 'wx' });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    spreadStaging(abs);
    tmpDir = await createProcessTmp(abs);
  } catch (err) {
    throw new TsbuildError('STORE', `cannot open store at ${abs}: ${errnoCode(err) === 'ENOSPC' ? 'no space left on device' : messageOf(err)}`, {
      cause: err,
      hint: 'set TSBUILD_ROOT (or --root) to a writable directory with free space',
    });
  }
  const lockPath = join(abs, 'lock');
  const withLock = <T>(fn: () => Promise<T>, o: Signal = {}): Promise<T> => withFileLock(lockPath, fn, o.signal);
  await withLock(async () => {
    // index.json must exist for other OCI tools; create it once, never clobber.
    const index = await readIndex(abs);
    if (index.manifests.length === 0) await writeIndex(abs, tmpDir, { ...emptyIndex(), ...index });
    await sweepTmp(abs); // a crashed process's staging debris
  }, options);
  const leasePath = join(abs, 'gc.lock');
  return {
    root: abs,
    tmpDir,
    blobs: createBlobStore(abs, tmpDir),
    tags: createTags(abs, tmpDir, withLock),
    snapshots: createSnapshots(abs, tmpDir, withLock),
    cache: createCacheIndex(abs, tmpDir),
    compressed: createCompressionCache(abs, tmpDir),
    withLock,
    withLease: <T>(fn: () => Promise<T>, o: Signal = {}): Promise<T> => withFileLock(leasePath, fn, o.signal, 'shared'),
  };
}
