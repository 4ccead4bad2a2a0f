/**
 * Compression codecs. gzip uses node:zlib (runs on the libuv thread pool, so several layers
 * compress in parallel across cores). Node 20 has no zstd, so zstd runs /usr/bin/zstd as a
 * filter process.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Duplex, PassThrough, pipeline as pipeStreams, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { errnoCode, TsbuildError } from '../util/errors.js';

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

/** A compressing transform stream. */
export function compressStream(format: 'gzip' | 'zstd', level?: number): NodeJS.ReadWriteStream {
  if (format === 'gzip') return createGzip(level === undefined ? {} : { level });
  const input = new PassThrough();
  const output = Readable.from(spawnFilter('zstd', ['-q', '-c', `-${level ?? 3}`, '-T2'], input));
  return Duplex.from({ writable: input, readable: output });
}

/** Decompresses an async byte source whose format is known. */
export function decompress(format: Compression, input: AsyncIterable<Uint8Array>, signal?: AbortSignal): AsyncIterable<Buffer> {
  if (format === 'none') return input as AsyncIterable<Buffer>;
  if (format === 'zstd') return spawnFilter('zstd', ['-q', '-d', '-c'], input, signal);
  return pipeStreams(Readable.from(input), createGunzip(), () => undefined) as AsyncIterable<Buffer>;
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

/** Decompresses whatever the magic bytes say the stream is. */
export async function autoDecompress(source: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<{ format: Compression; stream: AsyncIterable<Buffer> }> {
  const { head, stream } = await sniff(source);
  const format = detectCompression(head);
  return { format, stream: decompress(format, stream, signal) };
}
