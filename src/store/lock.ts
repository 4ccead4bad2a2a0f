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

const held = new AsyncLocalStorage<Map<string, LockMode>>();
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

/** Runs `fn` holding `lockPath`; re-entrant per async context (a shared hold cannot be upgraded). */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, signal?: AbortSignal, mode: LockMode = 'exclusive'): Promise<T> {
  const current = held.getStore();
  const have = current?.get(lockPath);
  if (have === 'exclusive' || (have === 'shared' && mode === 'shared')) return fn();
  if (have === 'shared') {
    // Waiting for our own shared hold to go away would deadlock.
    throw new TsbuildError('STORE', `cannot take ${lockPath} exclusively while this task holds it shared`, { hint: 'do not prune from inside a build' });
  }
  const release = await holdFileLock(lockPath, signal, mode);
  try {
    return await held.run(new Map([...(current ?? []), [lockPath, mode]]), fn);
  } finally {
    await release();
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
