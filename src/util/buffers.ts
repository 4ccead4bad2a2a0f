/**
 * Recycled 1 MiB buffers for the large-blob path: the tar packer fills them, the blob writer's
 * worker thread hashes and writes them and hands them back (store/offthread.ts). Without this,
 * each side lets dead buffers pile up to V8's external-memory GC trigger (~64 MB per thread,
 * measured as +60 MB peak RSS on a 120 MB COPY).
 */
export const BIG_BUFFER = 1 << 20;

/** Enough for the writer's backlog plus a few being filled. */
const KEEP = 12;
const spare: ArrayBuffer[] = [];

/** A BIG_BUFFER-sized Buffer owning its whole ArrayBuffer (contents undefined). */
export function takeBigBuffer(): Buffer {
  const recycled = spare.pop();
  return recycled !== undefined ? Buffer.from(recycled) : Buffer.allocUnsafeSlow(BIG_BUFFER);
}

/** Gives a finished BIG_BUFFER-sized ArrayBuffer back for reuse; others are left to the GC. */
export function recycleBigBuffer(buffer: ArrayBuffer): void {
  if (buffer.byteLength === BIG_BUFFER && spare.length < KEEP) spare.push(buffer);
}
