/**
 * `RUN --mount=type=cache`: a persistent dir under the store, named by a hash of its id (so an id
 * can never name a host path, CVE-2024-9675). With `from=STAGE|IMAGE[,source=DIR]` the cache
 * starts as a copy of that dir, and, as in BuildKit, a different base is a different cache.
 * `sharing=locked` users of one cache run one at a time, across processes too (flock); `private`
 * ones get a dir of their own while it is in use (within this process).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chown, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { holdFileLock } from '../store/index.js';
import { TsbuildError, errnoCode } from '../util/errors.js';
import { lstatOrUndefined } from '../util/fs.js';
import { viewItem } from './add-sources.js';
import { stageCopy } from './copy.js';
import type { ExpandedMount } from './mount-host.js';
import { RootfsView, type ViewEntry } from './rootfs.js';
import { lowerDirsOf, type StepEnv } from './steps.js';

export interface CacheSeed {
  view: RootfsView;
  entry: ViewEntry;
  /** e.g. `/root/.cache from deps` (for --explain-cache). */
  label: string;
  /** The base's identity: the stage's cache key and the path (keyed, and names the cache dir). */
  identity: string;
}

export async function resolveCacheSeed(from: string, source: string, env: StepEnv): Promise<CacheSeed> {
  const state = await env.stageState(from);
  const view = new RootfsView(lowerDirsOf(state, env.store));
  const { path, entry } = await view.resolve(source, true);
  if (entry === undefined || !entry.stat.isDirectory()) {
    throw new TsbuildError('DOCKERFILE', `cache mount source ${source} is not a directory in ${from}`, { hint: `the stage or image "${from}" has no directory ${path}` });
  }
  return { view, entry, label: `${path} from ${from}`, identity: `${state.key}:${path}` };
}

/** Serialises `sharing=locked` cache users within this process. */
const locks = new Map<string, Promise<void>>();

async function lock(dir: string): Promise<() => void> {
  const prev = locks.get(dir) ?? Promise.resolve();
  let unlock = (): void => undefined;
  const mine = new Promise<void>((resolve) => (unlock = resolve));
  const chained = prev.then(() => mine);
  locks.set(dir, chained);
  await prev;
  return () => {
    unlock();
    if (locks.get(dir) === chained) locks.delete(dir);
  };
}

/**
 * `sharing=locked` between builds too: after this process's queue, flock(2) on `<dir>.lock` (a
 * SIGKILLed holder releases it with its fd). The in-process queue comes first because flock locks
 * belong to open files, and two opens in one process would not exclude each other in order.
 */
async function lockAcrossProcesses(dir: string, signal: AbortSignal | undefined): Promise<() => void> {
  const unlock = await lock(dir);
  try {
    await mkdir(dirname(dir), { recursive: true });
    const release = await holdFileLock(`${dir}.lock`, signal);
    return () => {
      void release().finally(unlock);
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

/** Steps of this process using each cache dir now (for sharing=private). */
const users = new Map<string, number>();

function use(dir: string): () => void {
  users.set(dir, (users.get(dir) ?? 0) + 1);
  return () => {
    const n = (users.get(dir) ?? 1) - 1;
    if (n === 0) users.delete(dir);
    else users.set(dir, n);
  };
}

/**
 * The cache dir for the mount (made, and seeded, on first use) and what to call when the step is
 * done. `sharing=private` while another step uses the cache: a fresh dir of its own for this
 * step (BuildKit makes another cache instance), under `scratch` so it goes with the step.
 */
export async function cacheDir(
  m: ExpandedMount,
  seed: CacheSeed | undefined,
  env: StepEnv,
  o: { scratch: string; held: Set<string> },
): Promise<{ dir: string; release: () => void }> {
  const id = m.id ?? m.target;
  const name = createHash('sha256').update(seed === undefined ? id : `${id}\0${seed.identity}`).digest('hex').slice(0, 32);
  let dir = join(env.store.root, 'cache-mounts', name);
  if (m.sharing === 'private' && users.has(dir)) dir = o.scratch;
  // `held`: caches this step has locked already (the same cache mounted twice must not wait on itself).
  const unlock = m.sharing === 'locked' && !o.held.has(dir) ? await lockAcrossProcesses(dir, env.signal) : undefined;
  if (unlock !== undefined) o.held.add(dir);
  const unuse = use(dir);
  const release = (): void => {
    unuse();
    unlock?.();
  };
  try {
    if (seed !== undefined) await seedOnce(dir, seed, env);
    const made = await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 });
    if (made === dir && (m.uid !== undefined || m.gid !== undefined)) await chown(dir, m.uid ?? 0, m.gid ?? 0);
  } catch (err) {
    release();
    throw err;
  }
  return { dir, release };
}

/** Copies the base into a fresh dir and renames it into place: a concurrent first user never sees half a seed. */
async function seedOnce(dir: string, seed: CacheSeed, env: StepEnv): Promise<void> {
  if ((await lstatOrUndefined(dir)) !== undefined) return;
  const tmp = `${dir}.seed-${randomBytes(6).toString('hex')}`;
  try {
    await mkdir(tmp, { recursive: true });
    await stageCopy([viewItem(seed.view, seed.entry, undefined, '')], {
      staging: tmp,
      view: new RootfsView([]),
      dest: '/',
      destIsDir: true,
      ...(env.signal !== undefined ? { signal: env.signal } : {}),
    });
    await rename(tmp, dir);
  } catch (err) {
    // Another user seeded it first (rename onto a non-empty dir): use theirs.
    if (errnoCode(err) !== 'ENOTEMPTY' && errnoCode(err) !== 'EEXIST') throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
