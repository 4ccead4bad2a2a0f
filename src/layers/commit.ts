import type { Digest } from '../image/digest.js';
import type { Store } from '../store/types.js';
import { upperDirChanges } from './changes.js';
import { changesToTar } from './tarball.js';

/**
 * Diff + tar + store in one streaming pass. Built layers are stored uncompressed, so the blob
 * digest is the diffID; `empty` says the step changed nothing (callers may skip the layer).
 */
export async function commitLayer(
  store: Store,
  upperDir: string,
  lowerDirs: string[],
  options: { sourceDateEpoch?: number; signal?: AbortSignal } = {},
): Promise<{ diffId: Digest; size: number; empty: boolean }> {
  const changes = await upperDirChanges(upperDir, lowerDirs, options.signal ? { signal: options.signal } : {});
  const tar = changesToTar(upperDir, changes, options);
  // changesToTar yields fresh buffers it never touches again (handOver), and the file sizes say
  // whether the blob is big enough to be hashed and written off the main thread.
  let sizeHint = 0;
  for (const change of changes) if (change.kind === 'entry' && change.stat.isFile()) sizeHint += Number(change.stat.size);
  const { digest, size } = await store.blobs.put(tar, { sizeHint, handOver: true, ...(options.signal ? { signal: options.signal } : {}) });
  return { diffId: digest, size, empty: changes.length === 0 };
}
