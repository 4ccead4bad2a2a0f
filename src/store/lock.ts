/**
 * Cross-process locks. Node has no flock(2), so `flock(1)` is run on a file descriptor we pass it:
 * the lock belongs to the open file description, which our process keeps after the helper exits.
 * A crashed or SIGKILLed holder releases it by the kernel closing the fd, so there is never a
 * stale lock to break.
 *
 * Two kinds: the store lock (exclusive, short critical sections) and the GC lease lock on
 * `<root>/gc.lock`: builds hold it shared for their whole run, prune takes it exclusive, so prune
 * never deletes what a running build has resolved but not yet tagged.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { AbortError, TsbuildError } from '../util/errors.js';

export type LockMode = 'exclusive' | 'shared';

const held = new AsyncLocalStorage<Map<string, LockMode>>();

async function acquire(fd: number, mode: LockMode, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
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
  const fh = await open(lockPath, 'a');
  try {
    await acquire(fh.fd, mode, signal);
    return await held.run(new Map([...(current ?? []), [lockPath, mode]]), fn);
  } finally {
    await fh.close(); // releases the flock
  }
}
