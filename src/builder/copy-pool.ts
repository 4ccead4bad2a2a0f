/**
 * Copies a COPY's regular files on the I/O worker thread (util/io-worker.ts). Staging 30,000
 * context files is mostly kernel time in file creation (copy_file_range, chown, chmod, utimes);
 * synchronous on the main thread that is one core, so the files go to the worker in batches
 * while the main thread walks the source and creates directories.
 *
 * Each job is "create `dst` as a copy of `src`, then owner, mode, times". Callers keep the
 * ordering rules: a path is queued once (`pending` says which are), and anything that must see a
 * queued file on disk (a replacement at the same path, a hard link to it, a directory's final
 * mtime) waits for `drain()`. Small copies never start the thread: the first files run inline.
 */
import { chmodSync, chownSync, constants, copyFileSync, utimesSync } from 'node:fs';
import { IoBatches } from '../util/io-worker.js';

export interface FileJob {
  src: string;
  dst: string;
  uid: number;
  gid: number;
  mode: number;
  /** Seconds (atime and mtime). */
  time: number;
}

/**
 * Reflink when the filesystem can, and never write into an existing file: a staged path may be a
 * hard link into an earlier snapshot (copy-reuse.ts), which must not change through it.
 */
export const COPY_FLAGS = constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL;

/** What the worker does per job, for the inline path. chmod after chown: chown clears setuid/setgid. */
function copyFileJob(j: FileJob): void {
  copyFileSync(j.src, j.dst, COPY_FLAGS);
  chownSync(j.dst, j.uid, j.gid);
  chmodSync(j.dst, j.mode);
  utimesSync(j.dst, j.time, j.time);
}

/** Files copied inline before a thread is worth a message round trip. */
const INLINE_FIRST = 256;
const BATCH = 64;
/** Batches in flight: the worker always has the next one while the main thread queues more. */
const AHEAD = 3;

export class FileCopier {
  readonly #batches = new IoBatches(AHEAD);
  #queue: FileJob[] = [];
  #inline = 0;

  /** Staged paths queued or being copied. */
  get pending(): ReadonlySet<string> {
    return this.#batches.pending;
  }

  /** Queues a copy; may wait for room. Throws the first failure of an earlier batch. */
  async add(job: FileJob): Promise<void> {
    this.#batches.throwIfFailed();
    if (this.#inline < INLINE_FIRST) {
      this.#inline++;
      copyFileJob(job);
      return;
    }
    this.#batches.pending.add(job.dst);
    this.#queue.push(job);
    if (this.#queue.length >= BATCH) await this.#send();
  }

  /** Waits until every queued file is on disk. */
  async drain(): Promise<void> {
    while (this.#queue.length > 0) await this.#send();
    await this.#batches.drained();
  }

  /** After success or failure: waits until the worker no longer touches the staging dir. */
  async settle(): Promise<void> {
    this.#queue = [];
    await this.#batches.stop();
  }

  async #send(): Promise<void> {
    await this.#batches.room();
    const jobs = this.#queue.splice(0, BATCH);
    this.#batches.post({ op: 'copy', flags: COPY_FLAGS, jobs }, jobs.map((j) => j.dst));
  }
}
