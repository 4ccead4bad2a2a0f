/**
 * Writes an extracted layer's regular files on the I/O worker thread (util/io-worker.ts). Creating
 * and writing thousands of files is mostly kernel time (inode allocation, page-cache copies,
 * chown/chmod/utimes): on the main thread it ran in series with inflating, hashing and parsing the
 * tar (a 400 MB pull: open 0.36–0.70 s and write 0.33 s of ~3.2 s busy). Here the file data is
 * copied into 1 MiB batch buffers (util/buffers.ts, handed back by the worker) and the files are
 * created there while the main thread reads on.
 *
 * The worker creates each file as writeNewFile does (O_EXCL|O_NOFOLLOW, owner, mode after owner,
 * time), at a path the extractor already resolved inside the root. The extractor keeps the
 * ordering: whatever must see a queued file on disk (its path or a path under it being resolved, a
 * replacement, a removal, a hard link, the final directory times) waits for `drain()`. Small layers
 * never start the thread: the first files, files with xattrs and files over 1 MiB stay inline.
 */
import { BIG_BUFFER, recycleBigBuffer, takeBigBuffer } from '../util/buffers.js';
import { TsbuildError } from '../util/errors.js';
import { IoBatches, replyError } from '../util/io-worker.js';

export interface FileJobMeta {
  uid: number;
  gid: number;
  mode: number;
  /** Seconds (atime and mtime). */
  mtime: number;
}

interface Job extends FileJobMeta {
  path: string;
  /** The file's bytes in the batch buffer. */
  start: number;
  end: number;
}

/** Files written inline before the thread is worth a message round trip. */
const INLINE_FIRST = 128;
const MAX_JOBS = 256;
/** Batches in flight: the worker always has the next one while the main thread fills another. */
const AHEAD = 3;

export class FileWriter {
  readonly #batches = new IoBatches(
    AHEAD,
    (reply) => {
      const cause = replyError(reply);
      return new TsbuildError('LAYER', cause.message, { cause });
    },
    (reply) => {
      if (reply.buf !== undefined) recycleBigBuffer(reply.buf.buffer as ArrayBuffer);
    },
  );
  #inline = 0;
  #buf: Buffer | undefined;
  #used = 0;
  #jobs: Job[] = [];

  /** Files queued and maybe not on disk yet. */
  get pendingCount(): number {
    return this.#batches.pending.size;
  }

  isPending(path: string): boolean {
    return this.#batches.pending.has(path);
  }

  /** Whether a file of `size` bytes without xattrs should be queued (counts the inline ones). */
  takes(size: number): boolean {
    if (size > BIG_BUFFER) return false;
    if (this.#inline < INLINE_FIRST) {
      this.#inline++;
      return false;
    }
    return true;
  }

  /** Queues `path` with exactly `size` bytes from `body`; may wait for room. Throws an earlier batch's failure. */
  async add(path: string, size: number, body: AsyncIterable<Buffer>, meta: FileJobMeta): Promise<void> {
    this.#batches.throwIfFailed();
    if (this.#buf !== undefined && this.#used + size > BIG_BUFFER) await this.#send();
    const buf = (this.#buf ??= takeBigBuffer());
    const start = this.#used;
    let end = start;
    for await (const chunk of body) {
      if (end + chunk.length > start + size) throw new TsbuildError('LAYER', `file data for ${path} longer than its header says`);
      end += chunk.copy(buf, end);
    }
    if (end - start !== size) throw new TsbuildError('LAYER', `short file data for ${path}`);
    this.#used = end;
    this.#jobs.push({ path, start, end, uid: meta.uid, gid: meta.gid, mode: meta.mode & 0o7777, mtime: meta.mtime });
    this.#batches.pending.add(path);
    if (this.#jobs.length >= MAX_JOBS) await this.#send();
  }

  /** Waits until every queued file is on disk; throws the first failure. */
  async drain(): Promise<void> {
    if (this.#jobs.length > 0) await this.#send();
    await this.#batches.drained();
  }

  /** After success or failure: returns once the worker no longer touches the target dir. */
  async settle(): Promise<void> {
    this.#jobs = [];
    await this.#batches.stop();
    if (this.#buf !== undefined) recycleBigBuffer(this.#buf.buffer as ArrayBuffer);
    this.#buf = undefined;
  }

  async #send(): Promise<void> {
    await this.#batches.room();
    const jobs = this.#jobs;
    const buf = this.#buf;
    this.#jobs = [];
    this.#buf = undefined;
    this.#used = 0;
    if (buf === undefined || jobs.length === 0) {
      if (buf !== undefined) recycleBigBuffer(buf.buffer as ArrayBuffer);
      return;
    }
    this.#batches.post({ op: 'files', jobs, buf }, jobs.map((j) => j.path), [buf.buffer as ArrayBuffer]);
  }
}
