/**
 * Cross-process exclusive lock. Node has no flock(2), so `flock(1)` is run on a file descriptor
 * we pass it: the lock belongs to the open file description, which our process keeps after the
 * helper exits. A crashed or SIGKILLed holder releases it by the kernel closing the fd, so there
 * is never a stale lock to break.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { AbortError, TsbuildError } from '../util/errors.js';

const held = new AsyncLocalStorage<Set<string>>();

async function acquire(fd: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('flock', ['--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
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

export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const current = held.getStore();
  if (current?.has(lockPath)) return fn(); // re-entrant: this async context already holds it
  const fh = await open(lockPath, 'a');
  try {
    await acquire(fh.fd, signal);
    return await held.run(new Set([...(current ?? []), lockPath]), fn);
  } finally {
    await fh.close(); // releases the flock
  }
}
