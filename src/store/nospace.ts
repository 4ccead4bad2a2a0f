/** Disk-full errors, anywhere in a cause chain, become one clear STORE error naming the store. */
import { errnoCode, TsbuildError } from '../util/errors.js';

export function isNoSpace(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const code = errnoCode(e);
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/** Rethrows `err` as TsbuildError('STORE', 'no space left on device …') when it is a disk-full error. */
export function rethrowNoSpace(root: string, what: string): (err: unknown) => never {
  return (err: unknown): never => {
    if (isNoSpace(err)) {
      throw new TsbuildError('STORE', `no space left on device in store ${root} (${what})`, {
        cause: err,
        hint: 'free space (`tsbuild prune`) or point --root / TSBUILD_ROOT at a larger filesystem',
      });
    }
    throw err;
  };
}

/**
 * For callers outside the store that stage files under it (the builder's COPY/RUN dirs): a raw
 * disk-full error whose path lies in the store (or names no path) as the same STORE error;
 * anything else unchanged.
 */
export function asStoreNoSpace(root: string, err: unknown): unknown {
  if (!isNoSpace(err) || (err instanceof TsbuildError && err.code === 'STORE')) return err;
  const e = err as { path?: unknown; dest?: unknown };
  const paths = [e.path, e.dest].filter((p): p is string => typeof p === 'string');
  if (paths.length > 0 && !paths.some((p) => p === root || p.startsWith(`${root}/`))) return err;
  try {
    rethrowNoSpace(root, err instanceof Error ? err.message : String(err))(err);
  } catch (mapped) {
    return mapped;
  }
  return err;
}
