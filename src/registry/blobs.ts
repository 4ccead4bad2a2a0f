import { createHash } from 'node:crypto';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';
import { sleep } from '../util/abort.js';
import { RegistryClient, describeNetworkError, pullScope } from './client.js';
import { RegistryError, isConnectionError } from './errors.js';
import { readLimited } from './manifest.js';
import type { BlobSink, TransferEvent } from './types.js';

export interface BlobFetchOptions {
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
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
 * Stream a blob into the sink, hashing as it flows: on a digest or size mismatch the source
 * fails before it ends, so the sink never commits the bytes. Dropped connections are retried.
 */
export async function downloadBlob(client: RegistryClient, hosts: string[], repository: string, desc: Descriptor, sink: BlobSink, o: BlobFetchOptions = {}): Promise<void> {
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
    let streamError: unknown;
    let bytes = 0;
    async function* verified(): AsyncGenerator<Buffer> {
      const hash = createHash('sha256');
      try {
        for await (const chunk of res.body) {
          const b = chunk as Buffer;
          bytes += b.length;
          if (bytes > desc.size) throw new RegistryError(`${what}: size mismatch (more than the ${desc.size} bytes the manifest declares)`);
          hash.update(b);
          emit('progress', bytes);
          yield b;
        }
        const got = `sha256:${hash.digest('hex')}`;
        if (bytes !== desc.size) throw new RegistryError(`${what}: size mismatch (${bytes} bytes, manifest declares ${desc.size})`);
        if (got !== desc.digest) throw new RegistryError(`${what}: digest mismatch (got ${got})`);
      } catch (err) {
        streamError = err;
        throw err;
      } finally {
        res.body.destroy();
      }
    }
    try {
      await sink.put(verified(), { expected: desc.digest, expectedSize: desc.size, ...(o.signal ? { signal: o.signal } : {}) });
      emit('done', desc.size);
      return;
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
