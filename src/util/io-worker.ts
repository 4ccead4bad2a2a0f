/**
 * One worker thread per process for bulk file-system work the main thread should not do alone on
 * a 2-core machine: hashing and writing large blobs (store/offthread.ts), copying a COPY's files
 * (builder/copy-pool.ts) and writing an extracted layer's files (layers/file-writer.ts). One
 * thread, not one per user: each isolate costs ~10 MB of RSS (measured), and on 2 cores a second
 * thread has no core of its own (a pull's blob writer and file writer share this one).
 *
 * Requests carry an `id`; replies come back to the listener of that id, in order. The thread is
 * started on first use and unref'd whenever no request is outstanding, so it never keeps the
 * process alive.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { nativeDirs } from './native.js';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { chmodSync, chownSync, closeSync, constants, copyFileSync, fchmodSync, fchownSync, futimesSync, openSync, utimesSync, writeSync } = require('node:fs');
const blobs = new Map();
/** An error reply: what IoReply carries of the fs error. */
function failure(m, err) {
  return { id: m.id, op: 'error', message: String(err && err.message), code: err && err.code, syscall: err && err.syscall, path: err && err.path };
}
function fail(m, err) {
  parentPort.postMessage(failure(m, err));
}
function copy(m) {
  for (const j of m.jobs) {
    try {
      copyFileSync(j.src, j.dst, m.flags);
      chownSync(j.dst, j.uid, j.gid);
      chmodSync(j.dst, j.mode);
      utimesSync(j.dst, j.time, j.time);
    } catch (err) {
      fail(m, err);
      return;
    }
  }
  parentPort.postMessage({ id: m.id, op: 'done' });
}
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Rootless: a chown we may not do keeps our own ids (as layers/nodes.ts). */
function chownQuiet(fd, uid, gid) {
  try { fchownSync(fd, uid, gid); } catch (err) { if (err.code !== 'EPERM' && err.code !== 'EINVAL') throw err; }
}
/** Extraction's regular files (layers/file-writer.ts): create exclusively, write, owner, mode, time. */
function files(m) {
  const buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength);
  let reply = { id: m.id, op: 'done', buf: m.buf };
  for (const j of m.jobs) {
    let fd;
    try {
      fd = openSync(j.path, CREATE, 0o600);
      let at = j.start;
      while (at < j.end) at += writeSync(fd, buf, at, j.end - at);
      chownQuiet(fd, j.uid, j.gid);
      fchmodSync(fd, j.mode);
      futimesSync(fd, j.mtime, j.mtime);
    } catch (err) {
      reply = { ...failure(m, err), buf: m.buf };
      break;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  // One reply per batch, the buffer with it for reuse (util/buffers.ts).
  parentPort.postMessage(reply, [m.buf.buffer]);
}
let writeback;
/** Starts writeback of what is written so far (best effort; see native/addon/writeback.c). */
function flushAhead(job, end) {
  if (writeback === undefined || end - job.flushed < WRITEBACK_STEP) return;
  try { writeback.start(job.fd, job.flushed, end - job.flushed); } catch {}
  job.flushed = end;
}
const WRITEBACK_STEP = 16 << 20;
function blob(m) {
  const job = blobs.get(m.id);
  try {
    if (m.op === 'begin') {
      if (m.writeback && writeback === undefined) { try { writeback = require(m.writeback); } catch { writeback = null; } }
      // Direct I/O when the file system takes it: a big blob then skips the page cache (writeback.c).
      const direct = writeback && writeback.directOpen ? writeback.directOpen(m.fd) : null;
      blobs.set(m.id, { fd: m.fd, hash: createHash('sha256'), failed: false, flushed: 0, direct });
      return;
    }
    if (job === undefined) return;
    if (m.op === 'data') {
      if (!job.failed) {
        const buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength);
        job.hash.update(buf);
        if (job.direct) {
          writeback.directWrite(job.direct, buf, m.pos);
        } else {
          let done = 0;
          while (done < buf.length) done += writeSync(job.fd, buf, done, buf.length - done, m.pos + done);
          flushAhead(job, m.pos + done);
        }
      }
      // The buffer goes back for reuse (util/buffers.ts) instead of waiting for this thread's GC.
      parentPort.postMessage({ id: m.id, op: 'ack', bytes: m.buf.byteLength, buf: m.buf }, [m.buf.buffer]);
      return;
    }
    blobs.delete(m.id);
    if (job.direct) {
      const direct = job.direct;
      job.direct = null;
      // The tail is written here: a failure is this job's error, and "done" must still follow it.
      try {
        if (m.op === 'end' && !job.failed) writeback.directFinish(direct);
        else writeback.directClose(direct);
      } catch (err) {
        job.failed = true;
        fail(m, err);
      }
    }
    parentPort.postMessage({ id: m.id, op: 'done', hex: m.op === 'end' && !job.failed ? job.hash.digest('hex') : '' });
  } catch (err) {
    if (job !== undefined) {
      job.failed = true;
      // The O_DIRECT descriptor is ours: closed on any failure, before the caller closes its fd.
      if (job.direct) { try { writeback.directClose(job.direct); } catch {} job.direct = null; }
    }
    fail(m, err);
  }
}
parentPort.on('message', (m) => (m.op === 'copy' ? copy(m) : m.op === 'files' ? files(m) : blob(m)));
`;

export interface IoReply {
  id: number;
  op: 'ack' | 'done' | 'error';
  bytes?: number;
  buf?: Uint8Array;
  hex?: string;
  message?: string;
  code?: string;
  syscall?: string;
  path?: string;
  /** The thread itself is gone: this is the last reply the channel gets, for all it had asked. */
  died?: true;
}

let worker: Worker | undefined;
const listeners = new Map<number, (reply: IoReply) => void>();
let nextId = 1;

function thread(): Worker {
  if (worker !== undefined) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true });
  w.on('message', (reply: IoReply) => listeners.get(reply.id)?.(reply));
  const died = (error: Error): void => {
    if (worker === w) worker = undefined;
    for (const [id, listener] of [...listeners]) listener({ id, op: 'error', message: error.message, died: true });
  };
  w.on('error', died);
  w.on('exit', (code) => died(new Error(`I/O worker thread exited (${code})`)));
  w.unref();
  worker = w;
  return w;
}

/** A request channel: `send` posts to the worker, replies reach `onReply` until `close`. */
export interface IoChannel {
  readonly id: number;
  send(message: Record<string, unknown>, transfer?: ArrayBuffer[]): void;
  close(): void;
}

/** The writeback addon (dist/native/writeback.node) when built; the worker loads it itself. */
let writebackPath: string | null | undefined;
export function writebackAddon(): string | undefined {
  writebackPath ??= nativeDirs().map((d) => join(d, 'writeback.node')).find((p) => existsSync(p)) ?? null;
  return writebackPath ?? undefined;
}

export function openIoChannel(onReply: (reply: IoReply) => void): IoChannel {
  const id = nextId++;
  const w = thread();
  listeners.set(id, onReply);
  w.ref();
  return {
    id,
    send: (message, transfer) => w.postMessage({ ...message, id }, transfer ?? []),
    close: () => {
      if (!listeners.delete(id)) return;
      if (listeners.size === 0) w.unref();
    },
  };
}

/** An Error like the one the worker's fs call threw (same code, syscall, path). */
export function replyError(reply: IoReply): Error {
  const { message = 'I/O worker failed', code, syscall, path } = reply;
  return Object.assign(new Error(message), code !== undefined ? { code } : {}, syscall !== undefined ? { syscall } : {}, path !== undefined ? { path } : {});
}

/**
 * Batches of jobs for the I/O worker, a bounded number in flight, answered in order: the
 * bookkeeping the COPY file copier (builder/copy-pool.ts) and the extraction file writer
 * (layers/file-writer.ts) share. Callers put a job's path in `pending` when they queue it; it leaves
 * when its batch is answered. The first failure is kept and thrown by the next `room()`,
 * `drained()` or `throwIfFailed()`.
 */
export class IoBatches {
  readonly pending = new Set<string>();
  #channel: IoChannel | undefined;
  readonly #inflight: { paths: string[]; done: () => void; settled: Promise<void> }[] = [];
  #failure: Error | undefined;

  /**
   * @param ahead batches in flight: the worker always has the next one while the caller fills another
   * @param toError the error kept for a failed batch
   * @param onReply sees every reply first (a buffer coming back for reuse)
   */
  constructor(
    private readonly ahead: number,
    private readonly toError: (reply: IoReply) => Error = replyError,
    private readonly onReply: (reply: IoReply) => void = () => undefined,
  ) {}

  /** Waits until fewer than `ahead` batches are in flight; throws the first failure. */
  async room(): Promise<void> {
    while (this.#inflight.length >= this.ahead) await this.#inflight[0]?.settled;
    this.throwIfFailed();
  }

  /** Posts one batch whose jobs are at `paths`. */
  post(message: Record<string, unknown>, paths: string[], transfer?: ArrayBuffer[]): void {
    this.#channel ??= openIoChannel((reply) => this.#answer(reply));
    let done = (): void => undefined;
    const settled = new Promise<void>((resolve) => (done = resolve));
    this.#inflight.push({ paths, done, settled });
    this.#channel.send(message, transfer);
  }

  #answer(reply: IoReply): void {
    this.onReply(reply);
    if (reply.op === 'error') this.#failure ??= this.toError(reply);
    // A dead thread answers once for everything outstanding.
    for (const batch of this.#inflight.splice(0, reply.died === true ? this.#inflight.length : 1)) {
      for (const p of batch.paths) this.pending.delete(p);
      batch.done();
    }
  }

  /** Returns once every batch sent is done; throws the first failure. */
  async drained(): Promise<void> {
    await this.#settled();
    this.throwIfFailed();
  }

  /** After success or failure: returns once the worker no longer touches what the batches named. */
  async stop(): Promise<void> {
    await this.#settled();
    this.#channel?.close();
    this.#channel = undefined;
  }

  async #settled(): Promise<void> {
    while (this.#inflight.length > 0) await this.#inflight[0]?.settled;
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
