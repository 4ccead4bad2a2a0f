import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as pipeStreams, Readable, Transform, type TransformCallback } from 'node:stream';
import { digestFromHash, digestHex, isDigest, type Digest } from '../image/digest.js';
import { DigestMismatchError, errnoCode, TsbuildError } from '../util/errors.js';
import { SYNC_WRITE_MAX, tmpName, writeAtomicSync } from '../util/fs.js';
import { rethrowNoSpace } from './nospace.js';
import { OffThreadWriter } from './offthread.js';
import type { BlobStore, PutResult } from './types.js';

const DEFAULT_MAX_READ = 16 << 20;

const READ_CHUNK = 1 << 20;

/** Hashes what flows through and fails at the end if it is not `expected`. */
class VerifyingStream extends Transform {
  #hash = createHash('sha256');
  constructor(readonly expected: Digest) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const actual = digestFromHash(this.#hash);
    cb(actual === this.expected ? null : corrupt(this.expected, actual));
  }
}

function corrupt(expected: Digest, actual: Digest): TsbuildError {
  return new TsbuildError('STORE', `blob ${expected} is corrupt (content hashes to ${actual})`, { hint: 'run `tsbuild prune --verify`; remove the image and re-pull or rebuild it' });
}

function toIterable(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream): AsyncIterable<Uint8Array> {
  return source as AsyncIterable<Uint8Array>; // Node readables are async iterables of chunks
}

const WRITES_IN_FLIGHT = 4;

/** Blobs expected to be at least this big are hashed and written on a worker thread (offthread.ts). */
const OFF_THREAD_MIN = 32 << 20;

type PutOptions = NonNullable<Parameters<BlobStore['put']>[1]>;

/** Where putBlob's chunks go: hashed and written, in order, at increasing offsets. */
interface ChunkSink {
  write(chunk: Uint8Array): Promise<void>;
  finish(): Promise<Digest>;
  /** After success or failure: returns once nothing touches the file any more. */
  abandon(): Promise<void>;
}

/**
 * Hash on the main thread; positional writes overlap with producing and hashing the next chunks
 * (a few in flight, so memory stays bounded): bound by the slower of the two, not their sum.
 */
function mainThreadSink(fh: FileHandle): ChunkSink {
  const hash = createHash('sha256');
  const inflight = new Set<Promise<void>>();
  let failed: { error: unknown } | undefined;
  let position = 0;
  return {
    async write(chunk) {
      if (failed !== undefined) throw failed.error;
      hash.update(chunk);
      const write: Promise<void> = fh.write(chunk, 0, chunk.byteLength, position).then(
        () => void inflight.delete(write),
        (error: unknown) => {
          failed ??= { error };
          inflight.delete(write);
        },
      );
      position += chunk.byteLength;
      inflight.add(write);
      if (inflight.size >= WRITES_IN_FLIGHT) await Promise.race(inflight);
    },
    async finish() {
      await Promise.all(inflight);
      if (failed !== undefined) throw failed.error;
      return digestFromHash(hash);
    },
    async abandon() {
      await Promise.all(inflight);
    },
  };
}

function offThreadSink(fd: number, handOver: boolean | undefined): ChunkSink {
  const writer = new OffThreadWriter(fd, handOver !== undefined ? { handOver } : {});
  return {
    write: (chunk) => writer.write(chunk),
    finish: async () => `sha256:${await writer.finish()}` as Digest,
    abandon: () => writer.abandon(),
  };
}

export function createBlobStore(root: string, tmpDir: string): BlobStore {
  const dir = join(root, 'blobs', 'sha256');
  const path = (digest: Digest): string => join(dir, digestHex(digest));

  // Metadata calls here are synchronous: a warm build asks about a few dozen blobs, and a
  // thread-pool round trip each cost more than the syscalls (see util/cooperate.ts). Still
  // promises (a microtask, not a round trip), so failures stay rejections.
  function size(digest: Digest): Promise<number | undefined> {
    return Promise.resolve().then(() => statSync(path(digest), { throwIfNoEntry: false })?.size);
  }

  /** An existing blob put again: its mtime is refreshed so a concurrent prune's grace period spares it. */
  function refreshSync(digest: Digest): void {
    const now = new Date();
    utimesSync(path(digest), now, now);
  }
  function refresh(digest: Digest): Promise<void> {
    return Promise.resolve().then(() => refreshSync(digest));
  }

  /** A whole blob already in memory (at most SYNC_WRITE_MAX): checked, then written like any small record. */
  function putSmall(bytes: Uint8Array, options: PutOptions): PutResult {
    const { expected, expectedSize, signal } = options;
    const digest = digestFromHash(createHash('sha256').update(bytes));
    if (expected !== undefined && digest !== expected) throw new DigestMismatchError(expected, digest);
    if (expectedSize !== undefined && bytes.byteLength !== expectedSize) {
      throw new TsbuildError('STORE', `size mismatch for ${digest}: expected ${expectedSize}, got ${bytes.byteLength}`);
    }
    signal?.throwIfAborted();
    const exists = statSync(path(digest), { throwIfNoEntry: false })?.size === bytes.byteLength;
    if (exists) {
      refreshSync(digest);
    } else {
      mkdirSync(dir, { recursive: true });
      writeAtomicSync(path(digest), bytes, { tmpDir, ...(signal ? { signal } : {}) });
    }
    return { digest, size: bytes.byteLength, created: !exists };
  }

  async function putBlob(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream, options: PutOptions): Promise<PutResult> {
    const { expectedSize, signal } = options;
    signal?.throwIfAborted();
    const chunks = toIterable(source)[Symbol.asyncIterator]();
    try {
      // Small blobs (the layers of a one-file edit are a few KB) are gathered and written in one go,
      // without a thread-pool round trip per call; at most SYNC_WRITE_MAX is held before streaming.
      const head: Uint8Array[] = [];
      let headBytes = 0;
      if ((options.sizeHint ?? expectedSize ?? 0) < OFF_THREAD_MIN) {
        while (headBytes <= SYNC_WRITE_MAX) {
          const next = await chunks.next();
          signal?.throwIfAborted();
          if (next.done === true) return putSmall(head.length === 1 ? (head[0] as Uint8Array) : Buffer.concat(head), options);
          head.push(next.value);
          headBytes += next.value.byteLength;
          if (expectedSize !== undefined && headBytes > expectedSize) throw new TsbuildError('STORE', `blob larger than expected size ${expectedSize}`);
        }
      }
      return await putStreamed(
        (async function* () {
          yield* head;
          for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) yield next.value;
        })(),
        options,
      );
    } finally {
      await chunks.return?.();
    }
  }

  async function putStreamed(source: AsyncIterable<Uint8Array>, options: PutOptions): Promise<PutResult> {
    const { expected, expectedSize, signal } = options;
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, tmpName('blob'));
    let written = 0;
    try {
      const fh = await open(tmp, 'wx', 0o644);
      let digest: Digest;
      try {
        const sink = (options.sizeHint ?? expectedSize ?? 0) >= OFF_THREAD_MIN ? offThreadSink(fh.fd, options.handOver) : mainThreadSink(fh);
        try {
          for await (const chunk of source) {
            signal?.throwIfAborted();
            written += chunk.byteLength;
            if (expectedSize !== undefined && written > expectedSize) {
              throw new TsbuildError('STORE', `blob larger than expected size ${expectedSize}`);
            }
            await sink.write(chunk);
          }
          digest = await sink.finish();
        } finally {
          await sink.abandon();
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (expected !== undefined && digest !== expected) throw new DigestMismatchError(expected, digest);
      if (expectedSize !== undefined && written !== expectedSize) {
        throw new TsbuildError('STORE', `size mismatch for ${digest}: expected ${expectedSize}, got ${written}`);
      }
      signal?.throwIfAborted();
      const final = path(digest);
      const exists = (await size(digest)) === written;
      if (exists) {
        await refresh(digest);
      } else {
        await mkdir(dir, { recursive: true });
        await rename(tmp, final);
      }
      return { digest, size: written, created: !exists };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  const store: BlobStore = {
    path,
    size,
    async has(digest) {
      return (await size(digest)) !== undefined;
    },

    async put(source, options = {}) {
      return putBlob(source, options).catch(rethrowNoSpace(root, 'writing a blob'));
    },

    async putBytes(data, options = {}) {
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      // Configs and manifests: hashed first, so a warm build re-putting the same ones only pays a
      // stat and a utimes; new ones are written synchronously.
      if (bytes.byteLength <= SYNC_WRITE_MAX) return Promise.resolve().then(() => putSmall(bytes, options)).catch(rethrowNoSpace(root, 'writing a blob'));
      return store.put(Readable.from([bytes]), options);
    },

    async open(digest, options = {}) {
      options.signal?.throwIfAborted();
      const file = path(digest);
      const fh = await open(file, 'r').catch((err: unknown) => {
        if (errnoCode(err) === 'ENOENT') throw new TsbuildError('NOT_FOUND', `blob ${digest} not in store`, { cause: err });
        throw err;
      });
      // 1 MiB reads: with the default 64 KiB, a 400 MB layer is 6,000 promise round trips and
      // chunks, which cost more main-thread time than hashing it (measured: 360 ms vs 184 ms).
      const input = fh.createReadStream({ highWaterMark: READ_CHUNK, ...(options.signal ? { signal: options.signal } : {}) });
      // pipeline forwards read errors and aborts into the verifier the caller consumes.
      return pipeStreams(input, new VerifyingStream(digest), () => undefined);
    },

    async readBytes(digest, options = {}) {
      const max = options.maxSize ?? DEFAULT_MAX_READ;
      const actual = await size(digest);
      if (actual === undefined) throw new TsbuildError('NOT_FOUND', `blob ${digest} not in store`);
      if (actual > max) throw new TsbuildError('STORE', `blob ${digest} is ${actual} bytes, over the ${max} limit`);
      // One synchronous read: these are configs and manifests (a warm build reads a dozen), and
      // a stream pipeline per blob cost more than the read.
      options.signal?.throwIfAborted();
      const bytes = readFileSync(path(digest));
      if (bytes.length > max) throw new TsbuildError('STORE', `blob ${digest} is ${bytes.length} bytes, over the ${max} limit`);
      const got = digestFromHash(createHash('sha256').update(bytes));
      if (got !== digest) throw corrupt(digest, got);
      return bytes;
    },

    async readJson<T>(digest: Digest, options: { signal?: AbortSignal; maxSize?: number } = {}): Promise<T> {
      const bytes = await store.readBytes(digest, options);
      try {
        return JSON.parse(bytes.toString('utf8')) as T;
      } catch (err) {
        throw new TsbuildError('IMAGE', `blob ${digest} is not valid JSON`, { cause: err });
      }
    },

    async delete(digest) {
      await rm(path(digest), { force: true });
    },

    async *list() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return;
        throw err;
      }
      for (const name of names.sort()) {
        const d = `sha256:${name}`;
        if (isDigest(d)) yield d;
      }
    },
  };
  return store;
}

