/**
 * A second reader of a stream that another consumer drives (a tee with one extra branch): the
 * producer `push`es each chunk and waits while the branch lags, so memory stays bounded and the
 * slower of the two readers sets the pace. A branch reader that stops early (or never starts and
 * is `close`d) no longer holds the producer back; a branch closed with an error makes the next
 * `push` throw it, so the producer stops too.
 */
export class Branch implements AsyncIterable<Buffer> {
  #queue: Buffer[] = [];
  #ended = false;
  #failed: { error: unknown } | undefined;
  #closed: { error?: unknown } | undefined;
  #wakeReader: (() => void) | undefined;
  #wakeWriter: (() => void) | undefined;

  constructor(readonly maxQueued = 8) {}

  async push(chunk: Buffer): Promise<void> {
    this.#throwIfClosed();
    if (this.#closed !== undefined) return;
    this.#queue.push(chunk);
    this.#wake('reader');
    while (this.#queue.length >= this.maxQueued && this.#closed === undefined) {
      await new Promise<void>((resolve) => (this.#wakeWriter = resolve));
    }
    this.#throwIfClosed();
  }

  /** The producer reached the end: the reader sees `done` once the queue is empty. */
  end(): void {
    this.#ended = true;
    this.#wake('reader');
  }

  /** The producer failed: the reader's next read throws `error`. */
  fail(error: unknown): void {
    this.#failed ??= { error };
    this.#wake('reader');
  }

  /** The reader is done with the branch (an error, if given, is thrown to the producer). */
  close(error?: unknown): void {
    if (error !== undefined && (this.#closed === undefined || !('error' in this.#closed))) this.#closed = { error };
    this.#closed ??= {};
    this.#queue = [];
    this.#wake('writer');
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.#failed !== undefined) throw this.#failed.error;
        const chunk = this.#queue.shift();
        if (chunk !== undefined) {
          this.#wake('writer');
          yield chunk;
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => (this.#wakeReader = resolve));
      }
    } finally {
      this.close();
    }
  }

  #throwIfClosed(): void {
    if (this.#closed !== undefined && 'error' in this.#closed) throw this.#closed.error;
  }

  #wake(who: 'reader' | 'writer'): void {
    const wake = who === 'reader' ? this.#wakeReader : this.#wakeWriter;
    if (who === 'reader') this.#wakeReader = undefined;
    else this.#wakeWriter = undefined;
    wake?.();
  }
}
