import type { Digest } from '../image/digest.js';
import type { BlobSource } from './types.js';

/**
 * Reads a blob from the source in chunks at any offset. The last chunk stays in memory so a
 * resumed upload re-sends it without reopening; an earlier offset reopens and skips ahead.
 * At most one chunk is ever held, never the whole blob.
 */
export class ChunkReader {
  #iter: AsyncIterator<Uint8Array> | undefined;
  #stream: NodeJS.ReadableStream | undefined;
  #pos = 0; // offset of the next byte the stream yields
  #left: Buffer = Buffer.alloc(0); // bytes read from the stream but not yet handed out
  #last: { start: number; buf: Buffer } | undefined;

  constructor(
    private readonly source: BlobSource,
    private readonly digest: Digest,
    private readonly chunkSize: number,
    private readonly signal?: AbortSignal,
  ) {}

  async read(offset: number): Promise<Buffer> {
    const last = this.#last;
    if (last && offset >= last.start && offset < last.start + last.buf.length) return last.buf.subarray(offset - last.start);
    if (this.#iter === undefined || offset < this.#pos - this.#left.length) await this.#reopen();
    await this.#skipTo(offset);
    const buf = await this.#take(this.chunkSize);
    this.#last = { start: offset, buf };
    return buf;
  }

  async close(): Promise<void> {
    await this.#iter?.return?.();
    const s = this.#stream as { destroy?: () => void } | undefined;
    s?.destroy?.();
    this.#iter = undefined;
  }

  async #reopen(): Promise<void> {
    await this.close();
    this.#stream = await this.source.open(this.digest, this.signal ? { signal: this.signal } : {});
    this.#iter = (this.#stream as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    this.#pos = 0;
    this.#left = Buffer.alloc(0);
  }

  /** Position so the next #take starts at `offset`. */
  async #skipTo(offset: number): Promise<void> {
    let cursor = this.#pos - this.#left.length;
    while (cursor < offset) {
      if (this.#left.length === 0 && !(await this.#pull())) return;
      const drop = Math.min(offset - cursor, this.#left.length);
      this.#left = this.#left.subarray(drop);
      cursor += drop;
    }
  }

  async #pull(): Promise<boolean> {
    const r = await this.#iter?.next();
    if (!r || r.done) return false;
    const b = Buffer.from(r.value);
    this.#pos += b.length;
    this.#left = b; // only called once #left is used up
    return true;
  }

  async #take(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      if (this.#left.length === 0 && !(await this.#pull())) break;
      const piece = this.#left.subarray(0, n - have);
      parts.push(piece);
      have += piece.length;
      this.#left = this.#left.subarray(piece.length);
    }
    return Buffer.concat(parts);
  }
}
