/**
 * Hashing and writing a large blob on the I/O worker thread (util/io-worker.ts). Committing a big
 * layer keeps the main thread busy producing the tar (stat, read, headers); SHA-256 of the same
 * bytes was a third of that thread's time (400 MB: ~260 ms of ~750 ms, profiled), so on a second
 * core it overlaps instead of adding. The worker owns both the hash and the positional writes, so
 * each chunk crosses threads once, handed over without a copy when the caller allows it; the
 * buffers come back for reuse (util/buffers.ts). Messages are handled in order, so "end"/"abort"
 * answers only after every earlier write.
 */
import { BIG_BUFFER, recycleBigBuffer, takeBigBuffer } from '../util/buffers.js';
import { openIoChannel, replyError, writebackAddon, type IoChannel, type IoReply } from '../util/io-worker.js';

/** Small chunks are gathered into buffers this big before they cross to the worker. */
const STAGE_SIZE = BIG_BUFFER;

/** Bytes posted but not yet written: bounds memory while the worker lags. */
const MAX_PENDING = 8 << 20;

/**
 * Hashes and writes chunks to `fd` (positional, from 0) on the worker. `handOver`: the caller never
 * touches a chunk again, so a chunk owning its whole ArrayBuffer moves without a copy.
 */
export class OffThreadWriter {
  readonly #channel: IoChannel;
  readonly #handOver: boolean;
  #position = 0;
  #pending = 0;
  #stage: Buffer | undefined;
  #staged = 0;
  #error: Error | undefined;
  #drained: (() => void) | undefined;
  #closing: { resolve: (hex: string) => void; reject: (error: Error) => void } | undefined;
  #closed = false;

  constructor(fd: number, options: { handOver?: boolean } = {}) {
    this.#handOver = options.handOver ?? false;
    this.#channel = openIoChannel((reply) => this.#reply(reply));
    // The worker starts writeback as it goes, so the fsync before the rename only waits for the tail.
    const writeback = writebackAddon();
    this.#channel.send({ op: 'begin', fd, ...(writeback !== undefined ? { writeback } : {}) });
  }

  /** Queues a chunk; resolves once the backlog is small enough to take more. */
  async write(chunk: Uint8Array): Promise<void> {
    this.#throwIfFailed();
    const owned = this.#handOver && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && chunk.buffer instanceof ArrayBuffer;
    if (owned && chunk.byteLength >= STAGE_SIZE / 4) {
      this.#flushStage();
      this.#post(chunk);
    } else {
      // Small or borrowed chunks (network reads are 16-64 KiB) are copied into a staging buffer:
      // one message per MiB, not per read — a message costs more than copying 64 KiB.
      const source = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      let from = 0;
      while (from < chunk.byteLength) {
        this.#stage ??= takeBigBuffer();
        const n = Math.min(chunk.byteLength - from, STAGE_SIZE - this.#staged);
        // Buffer#copy is a plain memcpy; TypedArray#set of a Buffer view measured 2.5x slower.
        source.copy(this.#stage, this.#staged, from, from + n);
        this.#staged += n;
        from += n;
        if (this.#staged === STAGE_SIZE) this.#flushStage();
      }
    }
    if (this.#pending > MAX_PENDING) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#throwIfFailed();
  }

  /** Waits for every write; the sha256 hex of all chunks. */
  finish(): Promise<string> {
    this.#flushStage();
    return this.#close('end');
  }

  /** Waits until the worker has stopped touching the fd (call before closing it, success or not). */
  async abandon(): Promise<void> {
    await this.#close('abort').catch(() => undefined);
  }

  #close(op: 'end' | 'abort'): Promise<string> {
    if (this.#closed) return Promise.reject(this.#error ?? new Error('blob writer already closed'));
    this.#closed = true;
    const done = new Promise<string>((resolve, reject) => (this.#closing = { resolve, reject }));
    this.#channel.send({ op });
    return done;
  }

  #flushStage(): void {
    if (this.#stage === undefined || this.#staged === 0) return;
    let full = this.#stage;
    if (this.#staged < STAGE_SIZE) {
      // A buffer of its own (allocUnsafeSlow never hands out the shared pool): it is transferred.
      full = Buffer.allocUnsafeSlow(this.#staged);
      this.#stage.copy(full, 0, 0, this.#staged);
    }
    this.#post(full);
    this.#stage = undefined;
    this.#staged = 0;
  }

  /** Moves `buf` (which owns its whole ArrayBuffer) to the worker. */
  #post(buf: Uint8Array): void {
    // Read the length first: the chunk is detached (length 0) once posted.
    const length = buf.byteLength;
    this.#channel.send({ op: 'data', buf, pos: this.#position }, [buf.buffer as ArrayBuffer]);
    this.#position += length;
    this.#pending += length;
  }

  #throwIfFailed(): void {
    if (this.#error !== undefined) throw this.#error;
  }

  #reply(reply: IoReply): void {
    if (reply.op === 'ack') {
      if (reply.buf !== undefined) recycleBigBuffer(reply.buf.buffer as ArrayBuffer);
      this.#pending -= reply.bytes ?? 0;
      if (this.#pending <= MAX_PENDING / 2) this.#wake();
      return;
    }
    if (reply.op === 'error') {
      this.#error ??= replyError(reply);
      this.#wake();
      // A failed write keeps the job open (later data is skipped); a dead thread ends it.
      if (reply.died !== true) return;
    }
    this.#channel.close();
    this.#closed = true;
    const closing = this.#closing;
    this.#closing = undefined;
    if (this.#error !== undefined || reply.hex === undefined || reply.hex === '') closing?.reject(this.#error ?? new Error('blob write abandoned'));
    else closing?.resolve(reply.hex);
  }

  #wake(): void {
    const wake = this.#drained;
    this.#drained = undefined;
    wake?.();
  }
}
