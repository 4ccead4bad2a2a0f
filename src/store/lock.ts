/**
 * Cross-process locks on flock(2). Node has no binding: the fsx addon (native/addon/fsx.c) tries the
 * lock without blocking, and only when another process holds it do we wait in `flock(1)`, run on a
 * file descriptor we pass it (a spawn costs ~5 ms, too much for every uncontended lock on a warm
 * build, fine for a real wait; the wait stays abortable and off the event loop). Either way the lock
 * belongs to our open file description, so a crashed or SIGKILLed holder releases it by the kernel
 * closing the fd: there is never a stale lock to break.
 *
 * Two kinds: the store lock (exclusive, short critical sections) and the GC lease lock on
 * `<root>/gc.lock`: builds hold it shared for their whole run, prune takes it exclusive, so prune
 * never deletes what a running build has resolved but not yet tagged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { AbortError, TsbuildError } from '../util/errors.js';
import { loadFsx } from '../util/native.js';

export type LockMode = 'exclusive' | 'shared';

/**
 * Exclusive locks this async context holds, for re-entrance. AsyncLocalStorage costs a promise hook
 * on every promise the process creates while it is enabled (Node 20): a build held its lease in
 * one for its whole run, and the hook was 18-27 ms of a 130-150 ms one-file-edit build (hyperfine,
 * 30 runs each). So it is used only for the short exclusive sections and disabled again when none
 * is running; shared holds are counted per process instead (below).
 */
const held = new AsyncLocalStorage<Set<string>>();
let exclusiveSections = 0;

/**
 * Shared holds of this process by lock path: one flock on one fd for all of them, released by the
 * last. Re-entrant by construction (a nested hold only counts), with no async context needed.
 */
const sharedHolds = new Map<string, { count: number; taken: Promise<() => Promise<void>> }>();

/**
 * Strong references to the open lock files. Node closes a FileHandle that becomes unreachable
 * (garbage collection), which would silently drop the lock while `fn` still runs — possible when
 * nothing else keeps the awaiting frames alive (e.g. a holder parked on a promise).
 */
const holding = new Set<FileHandle>();

async function acquire(fd: number, mode: LockMode, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  if (tryLock(fd, mode)) return;
  await waitForLock(fd, mode, signal);
}

/** true when taken at once; false when contended or when the addon is not built. */
function tryLock(fd: number, mode: LockMode): boolean {
  const fsx = loadFsx();
  if (fsx === undefined) return false;
  try {
    return fsx.flock(fd, mode === 'exclusive');
  } catch (err) {
    throw new TsbuildError('STORE', `store lock failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function waitForLock(fd: number, mode: LockMode, signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('flock', [`--${mode}`, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const onAbort = (): void => void child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new TsbuildError('STORE', 'cannot run flock(1) to lock the store', { cause: err }));
    });
    child.on('close', (code) => {
      signal?.removeEventListener('abort', onAbort);
      if (code === 0) resolve();
      else if (signal?.aborted) reject(new AbortError(signal.reason));
      else reject(new TsbuildError('STORE', `store lock failed: ${stderr.trim() || `flock exit ${code}`}`));
    });
  });
}

/**
 * Runs `fn` holding `lockPath`. Exclusive: re-entrant per async context. Shared: re-entrant and
 * joined across the whole process. An exclusive request for a path this process holds shared fails
 * at once: it would wait for itself (e.g. a prune from inside a build).
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, signal?: AbortSignal, mode: LockMode = 'exclusive'): Promise<T> {
  if (mode === 'shared') return withSharedLock(lockPath, fn, signal);
  if (sharedHolds.has(lockPath)) {
    throw new TsbuildError('STORE', `cannot take ${lockPath} exclusively while this process holds it shared`, { hint: 'do not prune while a build, pull or push of this process runs' });
  }
  const current = held.getStore();
  if (current?.has(lockPath) === true) return fn();
  const release = await holdFileLock(lockPath, signal, mode);
  exclusiveSections++;
  try {
    return await held.run(new Set([...(current ?? []), lockPath]), fn);
  } finally {
    // No section left: nothing can ask getStore() for one, and the promise hook goes away.
    if (--exclusiveSections === 0) held.disable();
    await release();
  }
}

async function withSharedLock<T>(lockPath: string, fn: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  for (;;) {
    let hold = sharedHolds.get(lockPath);
    const joined = hold !== undefined;
    if (hold === undefined) {
      const fresh = { count: 0, taken: holdFileLock(lockPath, signal, 'shared') };
      // A failed wait (aborted, unreadable lock file) is forgotten at once: later callers wait anew.
      fresh.taken.catch(() => sharedHolds.get(lockPath) === fresh && sharedHolds.delete(lockPath));
      sharedHolds.set(lockPath, fresh);
      hold = fresh;
    }
    hold.count++;
    let taken = false;
    try {
      await hold.taken;
      taken = true;
      return await fn();
    } catch (err) {
      // The wait this call joined was another caller's and failed (e.g. its signal): wait on ours.
      if (joined && !taken) {
        signal?.throwIfAborted();
        continue;
      }
      throw err;
    } finally {
      if (--hold.count === 0) {
        if (sharedHolds.get(lockPath) === hold) sharedHolds.delete(lockPath);
        const release = await hold.taken.catch(() => undefined);
        await release?.();
      }
    }
  }
}

/**
 * Takes `lockPath` for a holder whose scope is not one callback (e.g. a cache mount held for a RUN
 * step); the returned function releases it (closing the fd drops the flock). Not re-entrant:
 * callers track that (withFileLock does, per async context).
 */
export async function holdFileLock(lockPath: string, signal?: AbortSignal, mode: LockMode = 'exclusive'): Promise<() => Promise<void>> {
  const fh = await open(lockPath, 'a');
  holding.add(fh);
  const release = async (): Promise<void> => {
    holding.delete(fh);
    await fh.close();
  };
  try {
    await acquire(fh.fd, mode, signal);
  } catch (err) {
    await release();
    throw err;
  }
  return release;
}
