/**
 * Compression codecs. gzip uses libdeflate when the host has it (libdeflate.ts: gzip members,
 * inflated in parallel on pull), else node:zlib; both run on the libuv thread pool, so several
 * layers compress in parallel across cores. Node 20 has no zstd, so zstd runs /usr/bin/zstd as a
 * filter process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Duplex, PassThrough, pipeline as pipeStreams, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { gunzipMembers } from './gunzip.js';
import { loadLibdeflate } from './libdeflate.js';
import { memberGzip, parallelGzip } from './pgzip.js';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Compression of a byte stream from its first bytes (magic numbers). */
export function detectCompression(head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Runs `cmd` as a stdin→stdout filter; fails if it exits non-zero. */
export async function* spawnFilter(cmd: string, args: string[], input: AsyncIterable<Uint8Array>, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(signal ? { signal } : {}) });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const closed = once(child, 'close').catch(() => [null]);
  let feedError: unknown;
  const feeding = pipeline(Readable.from(input), child.stdin).catch((err: unknown) => {
    feedError = err;
    child.stdout.destroy();
  });
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    await feeding;
    const [code] = (await closed) as [number | null];
    if (feedError !== undefined && errnoCode(feedError) !== 'EPIPE') {
      throw new TsbuildError('LAYER', `feeding ${cmd} failed`, { cause: feedError });
    }
    if (code !== 0) throw new TsbuildError('LAYER', `${cmd} failed (exit ${code}): ${stderr.trim()}`);
    finished = true;
  } finally {
    if (!finished) child.kill('SIGKILL');
  }
}

/** gzip on several cores (pgzip.ts): libdeflate members when available, else one zlib member. */
function gzip(input: AsyncIterable<Uint8Array>, level: number | undefined): AsyncIterable<Buffer> {
  const ld = loadLibdeflate();
  const options = level === undefined ? {} : { level };
  return ld === undefined ? parallelGzip(input, options) : memberGzip(input, ld, options);
}

/** A compressing transform stream. */
export function compressStream(format: 'gzip' | 'zstd', level?: number): NodeJS.ReadWriteStream {
  const input = new PassThrough();
  const output = Readable.from(format === 'gzip' ? gzip(input, level) : spawnFilter('zstd', ['-q', '-c', `-${level ?? 3}`, '-T2'], input));
  return Duplex.from({ writable: input, readable: output });
}

/**
 * Inflate works in pieces this big, in and out: each piece is one thread-pool round trip, and
 * zlib's 16 KiB default made those round trips (not inflating) most of a layer's unpack time.
 */
const INFLATE_PIECE = 256 * 1024;

/** Joins small chunks (network reads, 64 KiB file reads) into pieces of at least `min` bytes. */
async function* coalesce(input: AsyncIterable<Uint8Array>, min: number): AsyncGenerator<Buffer> {
  let parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of input) {
    parts.push(chunk);
    size += chunk.byteLength;
    if (size >= min) {
      yield parts.length === 1 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}

export interface DecompressOptions {
  /** The consumer holds no chunk past the next 1 MiB it reads: gzip outputs may be reused (gunzip.ts). */
  reuseOutput?: boolean;
}

/** Decompresses an async byte source whose format is known. */
export function decompress(format: Compression, input: AsyncIterable<Uint8Array>, signal?: AbortSignal, options: DecompressOptions = {}): AsyncIterable<Buffer> {
  if (format === 'none') return input as AsyncIterable<Buffer>;
  if (format === 'zstd') return spawnFilter('zstd', ['-q', '-d', '-c'], input, signal);
  const ld = loadLibdeflate();
  if (ld === undefined) return zlibGunzip(input);
  return gunzipMembers(input, ld, zlibGunzip, { ...(signal ? { signal } : {}), ...(options.reuseOutput === true ? { reuseOutput: true } : {}) });
}

function zlibGunzip(input: AsyncIterable<Uint8Array>): AsyncIterable<Buffer> {
  const inflate = createGunzip({ chunkSize: INFLATE_PIECE });
  return pipeStreams(Readable.from(coalesce(input, INFLATE_PIECE)), inflate, () => undefined) as AsyncIterable<Buffer>;
}

/** Peeks at the first bytes of a stream without losing them. */
export async function sniff(source: AsyncIterable<Uint8Array>, bytes = 8): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < bytes) {
    const r = await it.next();
    if (r.done === true) {
      done = true;
      break;
    }
    const b = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    first.push(b);
    have += b.length;
  }
  const head = Buffer.concat(first);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (let r = await it.next(); r.done !== true; r = await it.next()) {
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
  }
  return { head, stream: all() };
}

/**
 * Decompression-bomb guard. Real layers compress 2:1 to 20:1 (sparse or zero-filled files up to
 * a few hundred); a ratio above 1:200 is refused, but only once more than 64 MiB came out, so
 * small highly compressible layers (empty files, text) are never refused.
 */
export interface RatioLimit {
  maxRatio: number;
  /** Uncompressed bytes after which the ratio is enforced. */
  after: number;
}

export const DEFAULT_RATIO_LIMIT: RatioLimit = { maxRatio: 200, after: 64 * 2 ** 20 };

/** Decompresses whatever the magic bytes say the stream is, refusing decompression bombs. */
export async function autoDecompress(
  source: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
  ratio: RatioLimit = DEFAULT_RATIO_LIMIT,
  options: DecompressOptions = {},
): Promise<{ format: Compression; stream: AsyncIterable<Buffer> }> {
  let compressedBytes = 0;
  const counted = (async function* () {
    for await (const chunk of source) {
      compressedBytes += chunk.byteLength;
      yield chunk;
    }
  })();
  const { head, stream } = await sniff(counted);
  const format = detectCompression(head);
  if (format === 'none') return { format, stream };
  return { format, stream: ratioGuarded(format, decompress(format, stream, signal, options), () => compressedBytes, ratio) };
}

/**
 * `inner`, decompressed from `compressedBytes()` bytes so far, refused once it expands past the
 * ratio: for any decompressor, the codec's or an external one (ADD and `build -` use bzip2/xz).
 */
export async function* ratioGuarded(format: string, inner: AsyncIterable<Buffer>, compressedBytes: () => number, ratio: RatioLimit = DEFAULT_RATIO_LIMIT): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of inner) {
    total += chunk.length;
    if (total > ratio.after && total > ratio.maxRatio * Math.max(compressedBytes(), 1)) {
      throw new TsbuildError('LAYER', `${format} data expands more than ${ratio.maxRatio}:1 past ${ratio.after} bytes (decompression bomb?)`);
    }
    yield chunk;
  }
}
