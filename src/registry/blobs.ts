import { createHash } from 'node:crypto';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';
import { sleep } from '../util/abort.js';
import { DigestMismatchError, messageOf } from '../util/errors.js';
import { Branch } from './branch.js';
import { RegistryClient, describeNetworkError, pullScope } from './client.js';
import { RegistryError, isConnectionError } from './errors.js';
import { readLimited } from './manifest.js';
import type { BlobSink, TransferEvent } from './types.js';

export interface BlobFetchOptions {
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  /**
   * A second reader of the bytes as they arrive (e.g. unpacking a layer while it downloads).
   * `data` fails like the download does; `stored` settles once the blob is verified and in the
   * sink — work that must not outlive a bad blob awaits it. Only the first attempt is teed: after
   * a dropped connection the download restarts alone and `downloadBlob` returns `teed: false`.
   */
  tee?: (data: AsyncIterable<Buffer>, stored: Promise<void>) => Promise<void>;
}

/** A tee reader started for one attempt; `settle` reports how the blob ended up. */
function startTee(tee: NonNullable<BlobFetchOptions['tee']>): { branch: Branch; done: Promise<unknown>; settle: (error?: unknown) => void } {
  const branch = new Branch();
  let settle: (error?: unknown) => void = () => undefined;
  const stored = new Promise<void>((resolve, reject) => (settle = (error) => (error === undefined ? resolve() : reject(error instanceof Error ? error : new Error(messageOf(error))))));
  stored.catch(() => undefined); // the reader may be gone by then
  const done = tee(branch, stored).then(
    () => branch.close(),
    (error: unknown) => {
      branch.close(error);
      throw error;
    },
  );
  done.catch(() => undefined); // awaited below; this only keeps an early failure from being "unhandled"
  return { branch, done, settle };
}

/** Blob GET from the first host that has it (mirrors before origin). */
async function openBlob(client: RegistryClient, hosts: string[], repository: string, digest: Digest, signal?: AbortSignal) {
  let lastError: unknown;
  for (const host of hosts) {
    try {
      const res = await client.send({
        host,
        method: 'GET',
        path: `/v2/${repository}/blobs/${digest}`,
        scopes: [pullScope(repository)],
        ...(signal ? { signal } : {}),
      });
      if (res.statusCode === 200) return res;
      await RegistryClient.fail(`blob ${host}/${repository}@${digest}`, res);
    } catch (err) {
      if (signal?.aborted) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

/** A small blob (config) read into memory, verified and size-capped. */
export async function fetchBlobBytes(client: RegistryClient, hosts: string[], repository: string, desc: Descriptor, max: number, signal?: AbortSignal): Promise<Buffer> {
  const what = `blob ${repository}@${desc.digest}`;
  if (desc.size > max) throw new RegistryError(`${what}: too large (${desc.size} bytes, limit ${max})`);
  const res = await openBlob(client, hosts, repository, desc.digest, signal);
  // Bounded by the descriptor: a server sending more is cut off at size+1, not at the cap.
  const bytes = await readLimited(res, desc.size, what, client.timeouts);
  if (bytes.length !== desc.size) throw new RegistryError(`${what}: size mismatch (${bytes.length} bytes, manifest declares ${desc.size})`);
  const got = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (got !== desc.digest) throw new RegistryError(`${what}: digest mismatch (got ${got})`);
  return bytes;
}

/**
 * Stream a blob into the sink, which hashes it as it flows and commits nothing on a digest
 * mismatch (the BlobSink contract; the store does it on its I/O worker for a large blob, so the
 * bytes are hashed once, not again here on the main thread: ~0.1 s of a 400 MB pull). A size
 * mismatch fails the source before it ends. A tee reader sees the end of the bytes before they
 * are verified and must await `stored` before keeping anything. Dropped connections are retried.
 */
export async function downloadBlob(client: RegistryClient, hosts: string[], repository: string, desc: Descriptor, sink: BlobSink, o: BlobFetchOptions = {}): Promise<{ teed: boolean }> {
  const what = `blob ${repository}@${desc.digest}`;
  const emit = (phase: TransferEvent['phase'], bytes: number): void => o.onProgress?.({ kind: 'blob', digest: desc.digest, phase, bytes, total: desc.size });
  emit('start', 0);
  for (let attempt = 1; ; attempt++) {
    const res = await openBlob(client, hosts, repository, desc.digest, o.signal);
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared !== desc.size) {
      res.body.destroy();
      throw new RegistryError(`${what}: size mismatch (registry sends ${declared} bytes, manifest declares ${desc.size})`);
    }
    const tee = o.tee !== undefined && attempt === 1 ? startTee(o.tee) : undefined;
    let streamError: unknown;
    let bytes = 0;
    async function* sized(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of res.body) {
          const b = chunk as Buffer;
          bytes += b.length;
          if (bytes > desc.size) throw new RegistryError(`${what}: size mismatch (more than the ${desc.size} bytes the manifest declares)`);
          emit('progress', bytes);
          await tee?.branch.push(b);
          yield b;
        }
        if (bytes !== desc.size) throw new RegistryError(`${what}: size mismatch (${bytes} bytes, manifest declares ${desc.size})`);
        tee?.branch.end();
      } catch (err) {
        streamError = err;
        tee?.branch.fail(err);
        throw err;
      } finally {
        res.body.destroy();
      }
    }
    try {
      try {
        await sink.put(sized(), { expected: desc.digest, expectedSize: desc.size, ...(o.signal ? { signal: o.signal } : {}) }).catch((err: unknown) => {
          throw err instanceof DigestMismatchError && err.expected === desc.digest ? new RegistryError(`${what}: digest mismatch (got ${err.actual})`) : err;
        });
      } catch (err) {
        tee?.branch.fail(err);
        tee?.settle(err);
        await tee?.done.catch(() => undefined); // its cleanup finishes before a retry or the error
        throw err;
      }
      tee?.settle();
      await tee?.done;
      emit('done', desc.size);
      return { teed: tee !== undefined };
    } catch (err) {
      const cause = streamError ?? err;
      if (o.signal?.aborted) throw err;
      if (cause instanceof RegistryError) throw cause;
      const { attempts, baseDelayMs, maxDelayMs } = client.retryPolicy;
      if (isConnectionError(cause) && attempt < attempts) {
        await sleep(Math.min(baseDelayMs * 2 ** (attempt - 1), maxDelayMs), o.signal);
        continue;
      }
      throw isConnectionError(cause) ? new RegistryError(`${what}: download failed after ${attempt} attempts: ${describeNetworkError(cause, client.timeouts)}`, { cause, temporary: true }) : err;
    }
  }
}
