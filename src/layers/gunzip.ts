/**
 * Parallel gunzip of our own multi-member gzip (see libdeflate.ts), with zlib as the judge of
 * everything else. While the stream is a run of members whose 'TB' subfield gives their size,
 * each member is cut out without inflating and inflated by libdeflate on the libuv pool (a few in
 * flight, output in order), its CRC32 and ISIZE verified. The input is untrusted: at the first
 * thing that is not exactly such a member (another header, a size beyond the data, an inflate
 * error, a CRC mismatch, a member too large), the bytes from that member's first byte on go to
 * zlib, which decodes or refuses them as it would have from the start. Foreign gzip (docker, pigz)
 * therefore takes the zlib path from byte 0.
 */
import { MEMBER_HEADER, MEMBER_TRAILER, memberSize, type Libdeflate } from './libdeflate.js';

/** Largest member output inflated in one piece (ours are 1 MiB): bounds what a hostile size field can make us allocate. */
const MAX_ISIZE = 16 << 20;
/** Stored blocks add 5 bytes per 64 KiB; anything larger than this cannot be a MAX_ISIZE member. */
const MAX_MEMBER = MAX_ISIZE + (MAX_ISIZE >> 10) + MEMBER_HEADER + MEMBER_TRAILER;
/** Deflate expands at most 1032:1 (a 258-byte match in 2 bits); a larger ISIZE is a lie. */
const MAX_DEFLATE_RATIO = 1032;
/**
 * An empty gzip member. zlib after it is in the state it is in after any member, so the bytes
 * handed to it after members we already inflated decode exactly as they would have mid-stream
 * (e.g. trailing zero padding is ignored there, but is a bad header at the start of a stream).
 */
const EMPTY_MEMBER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/** A pull-based byte queue over an async iterator: wait for n bytes, look at them, consume them. */
class Bytes {
  private chunks: Buffer[] = [];
  private size = 0;
  done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  /** Reads until at least `n` bytes are buffered; false when the input ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.size < n && !this.done) {
      const r = await this.it.next();
      if (r.done === true) this.done = true;
      else if (r.value.byteLength > 0) {
        this.chunks.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        this.size += r.value.byteLength;
      }
    }
    return this.size >= n;
  }

  /**
   * The first `n` (at most `buffered`) bytes: a view when they lie in one chunk, else one copy of just
   * those bytes (into `into` when it is large enough).
   */
  peek(n: number, into?: Buffer): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) return first.subarray(0, n);
    const out = into !== undefined && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafe(n);
    let at = 0;
    for (const chunk of this.chunks) {
      at += chunk.copy(out, at, 0, Math.min(chunk.length, n - at));
      if (at === n) break;
    }
    return out;
  }

  skip(n: number): void {
    this.size -= n;
    while (n > 0) {
      const first = this.chunks[0] as Buffer;
      if (first.length > n) {
        this.chunks[0] = first.subarray(n);
        return;
      }
      n -= first.length;
      this.chunks.shift();
    }
  }

  /** Everything not consumed yet: the buffered bytes, then the rest of the input. */
  async *rest(): AsyncGenerator<Buffer> {
    const buffered = this.chunks;
    this.chunks = [];
    this.size = 0;
    yield* buffered;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done === true) this.done = true;
      else yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
  }
}

interface Member {
  bytes: Buffer;
  inflated: Promise<Buffer | null>;
  /** The copy `bytes` was made in, to reuse once the member is inflated. */
  copy: Buffer | undefined;
  /** The pooled output it inflates into, if any (see OutputPool). */
  pooled: Buffer | undefined;
}

/**
 * Reused outputs for a consumer that lets go of each chunk quickly (layer extraction): ~575 MB of
 * 1 MiB outputs per 400 MB pull were otherwise garbage, ~40 MB of it alive at a time until V8's
 * next collection (peak RSS 188-205 MB). Only full-size members (exactly OUTPUT bytes) use it, and a
 * chunk is taken back only once LENT later full-size chunks have been handed out: a consumer that
 * reads at most OUTPUT bytes at a time (the tar reader: headers, ≤ 1 MiB PAX bodies, file data it
 * writes or copies before asking for more) can no longer hold a view of it. Small members (a
 * hostile stream of 1-byte members) never share memory, so no read can span a reused chunk.
 */
const OUTPUT = 1 << 20;
const LENT = 3;

class OutputPool {
  readonly #free: Buffer[] = [];
  readonly #lent: Buffer[] = [];
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(OUTPUT);
  }
  /** `out` was just handed to the consumer. */
  lend(out: Buffer): void {
    this.#lent.push(out);
    if (this.#lent.length > LENT) this.#free.push(this.#lent.shift() as Buffer);
  }
}

/**
 * Members usually straddle network chunks and are copied out whole: ~1 MiB each, as much copied
 * garbage as the compressed layer itself, which kept V8's external-memory GC busy. These copies
 * are reused once their member is inflated (the inflate job holds them until then).
 */
const COPY_SIZE = (1 << 20) + (1 << 16);

/** The next whole member if it is one of ours with a believable size, 'end' at a clean end, 'other' otherwise (nothing consumed). */
async function nextMember(bytes: Bytes, ld: Libdeflate, spare: Buffer[], outputs: OutputPool | undefined): Promise<Member | 'end' | 'other'> {
  if (!(await bytes.fill(1))) return 'end';
  if (!(await bytes.fill(MEMBER_HEADER))) return 'other';
  const size = memberSize(bytes.peek(MEMBER_HEADER));
  // The smallest deflate stream is 2 bytes (an empty fixed-Huffman block).
  if (size === undefined || size < MEMBER_HEADER + 2 + MEMBER_TRAILER || size > MAX_MEMBER) return 'other';
  if (!(await bytes.fill(size))) return 'other';
  const into = size <= COPY_SIZE ? (spare.pop() ?? Buffer.allocUnsafeSlow(COPY_SIZE)) : undefined;
  const member = bytes.peek(size, into);
  const copy = into !== undefined && member.buffer === into.buffer ? into : undefined;
  if (into !== undefined && copy === undefined) spare.push(into); // a view of one chunk: no copy made
  const crc = member.readUInt32LE(size - 8);
  const isize = member.readUInt32LE(size - 4);
  const deflated = member.subarray(MEMBER_HEADER, size - MEMBER_TRAILER);
  if (isize > MAX_ISIZE || isize > MAX_DEFLATE_RATIO * deflated.length) {
    if (copy !== undefined) spare.push(copy);
    return 'other';
  }
  bytes.skip(size);
  const pooled = outputs !== undefined && isize === OUTPUT ? outputs.take() : undefined;
  const inflated = (pooled !== undefined ? ld.inflateRaw(deflated, isize, crc, pooled) : ld.inflateRaw(deflated, isize, crc)).then(
    (out) => (out === null ? null : Buffer.from(out.buffer, out.byteOffset, isize)),
    () => null,
  );
  return { bytes: member, inflated, copy, pooled };
}

export interface GunzipMembersOptions {
  /** Members inflating at once (default 3: leaves the pool a thread for file I/O). */
  inFlight?: number;
  signal?: AbortSignal;
  /**
   * Reuse output chunks (OutputPool): only for a consumer that never holds a chunk, or a view of it,
   * past the next OUTPUT bytes it reads.
   */
  reuseOutput?: boolean;
}

/** Gunzips `input`, our members in parallel with libdeflate, anything else through `zlib` (a plain streaming gunzip). */
export async function* gunzipMembers(
  input: AsyncIterable<Uint8Array>,
  ld: Libdeflate,
  zlib: (input: AsyncIterable<Uint8Array>) => AsyncIterable<Buffer>,
  options: GunzipMembersOptions = {},
): AsyncGenerator<Buffer> {
  const inFlight = Math.max(1, options.inFlight ?? 3);
  const it = input[Symbol.asyncIterator]();
  const bytes = new Bytes(it);
  const queue: Member[] = [];
  const spare: Buffer[] = [];
  const outputs = options.reuseOutput === true ? new OutputPool() : undefined;
  let tail: 'end' | 'other' | undefined;
  let decoded = false; // a member was inflated: zlib would now be past a member's end
  try {
    for (;;) {
      while (tail === undefined && queue.length < inFlight) {
        options.signal?.throwIfAborted();
        const next = await nextMember(bytes, ld, spare, outputs);
        if (typeof next === 'string') tail = next;
        else queue.push(next);
      }
      const head = queue.shift();
      const out = head === undefined ? null : await head.inflated;
      if (out === null) {
        if (head === undefined && tail === 'end' && decoded) return;
        // From this member's first byte on (later members already cut out included), zlib decides.
        const from = [...(decoded ? [EMPTY_MEMBER] : []), ...(head === undefined ? [] : [head.bytes]), ...queue.map((m) => m.bytes)];
        queue.length = 0;
        yield* zlib(
          (async function* () {
            yield* from;
            yield* bytes.rest();
          })(),
        );
        return;
      }
      decoded = true;
      if (head?.copy !== undefined) spare.push(head.copy); // inflated: the job let go of its input
      if (head?.pooled !== undefined) outputs?.lend(head.pooled);
      if (out.length > 0) yield out;
    }
  } finally {
    if (!bytes.done) await Promise.resolve(it.return?.()).catch(() => undefined);
  }
}
