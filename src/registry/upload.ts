import { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';
import { sleep } from '../util/abort.js';
import { RegistryClient, pullScope, pushScope } from './client.js';
import { RegistryError, isConnectionError } from './errors.js';
import type { BlobSource, TransferEvent } from './types.js';
import { OCTET, SessionLost, blobCtx, finish, location, so, withDigest, type Ctx } from './upload-session.js';
import { putChunked, putStreamed } from './upload-stream.js';

export interface UploadOptions {
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  /**
   * Blobs larger than this go up in PATCH chunks of this size. Unset (the default): blobs up to
   * 8 MiB go in one PUT, larger ones stream in one PATCH that resumes from the registry's offset.
   */
  chunkSize?: number;
  /** Repositories on the same registry to try a cross-repository mount from. */
  mountFrom?: string[];
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

const SESSION_ATTEMPTS = 5;
const MONOLITHIC_MAX = 8 * 1024 * 1024;
/** HEAD → mount → POST session → monolithic PUT or resumable chunked PATCHes → PUT ?digest=. */
export async function uploadBlob(client: RegistryClient, host: string, repository: string, desc: { digest: Digest; size: number }, source: BlobSource, o: UploadOptions = {}): Promise<UploadOutcome> {
  const ctx = blobCtx(client, host, repository, desc, source, o);
  const { what, emit } = ctx;
  if (await blobExists(ctx)) {
    emit('exists', desc.size);
    return 'exists';
  }
  for (let session = 1; ; session++) {
    try {
      const start = await startSession(ctx);
      if (typeof start !== 'string') {
        emit('mounted', desc.size);
        return 'mounted';
      }
      emit('start', 0);
      if (desc.size <= (o.chunkSize ?? MONOLITHIC_MAX)) await putMonolithic(ctx, start);
      else if (o.chunkSize === undefined) await putStreamed(ctx, start);
      else await putChunked(ctx, start);
      emit('done', desc.size);
      return 'uploaded';
    } catch (err) {
      o.signal?.throwIfAborted();
      const retryable = err instanceof SessionLost || isConnectionError(err) || (err instanceof RegistryError && err.temporary);
      if (!retryable || session >= SESSION_ATTEMPTS) {
        if (err instanceof SessionLost) throw new RegistryError(`${what}: upload failed: ${err.message}`, { cause: err });
        throw err;
      }
      // The blob may have been committed even though we never saw the answer.
      if (await blobExists(ctx).catch(() => false)) {
        emit('done', desc.size);
        return 'uploaded';
      }
      await sleep(200 * 2 ** (session - 1), o.signal);
    }
  }
}
async function blobExists(ctx: Ctx): Promise<boolean> {
  const res = await ctx.client.send({ host: ctx.host, method: 'HEAD', path: `/v2/${ctx.repository}/blobs/${ctx.digest}`, scopes: [pushScope(ctx.repository)], ...so(ctx) });
  await res.body.dump();
  if (res.statusCode === 200) return true;
  if (res.statusCode === 404) return false;
  return RegistryClient.fail(`${ctx.what}: existence check`, res);
}

/** Returns the upload location, or { mounted: true } when a cross-repository mount succeeded. */
async function startSession(ctx: Ctx): Promise<string | { mounted: true }> {
  const { base } = await ctx.client.host(ctx.host, ctx.o.signal);
  for (const from of ctx.o.mountFrom ?? []) {
    if (from === ctx.repository) continue;
    const res = await ctx.client.send({
      host: ctx.host,
      method: 'POST',
      path: `/v2/${ctx.repository}/blobs/uploads/?mount=${ctx.digest}&from=${encodeURIComponent(from)}`,
      scopes: [pushScope(ctx.repository), pullScope(from)],
      headers: { 'content-length': '0' },
      ...so(ctx),
    });
    if (res.statusCode === 201) {
      await res.body.dump();
      return { mounted: true };
    }
    // 202: the registry could not mount and opened an ordinary upload session instead.
    if (res.statusCode === 202) {
      await res.body.dump();
      return location(res, base, ctx.what);
    }
    await res.body.dump();
  }
  return openSession(ctx, base);
}

/** POST: a new upload session's location. */
export async function openSession(ctx: Pick<Ctx, 'client' | 'host' | 'repository' | 'o' | 'what'>, base: string): Promise<string> {
  const res = await ctx.client.send({ host: ctx.host, method: 'POST', path: `/v2/${ctx.repository}/blobs/uploads/`, scopes: [pushScope(ctx.repository)], headers: { 'content-length': '0' }, ...(ctx.o.signal ? { signal: ctx.o.signal } : {}) });
  if (res.statusCode !== 202) return RegistryClient.fail(`${ctx.what}: starting upload`, res);
  await res.body.dump();
  return location(res, base, ctx.what);
}
async function putMonolithic(ctx: Ctx, loc: string): Promise<void> {
  const body = async (): Promise<Readable> => {
    const stream = await ctx.source.open(ctx.digest, so(ctx));
    // A generator, not a 'data' listener: the stream must not flow before undici reads it.
    async function* counted(): AsyncGenerator<Buffer> {
      let sent = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        sent += chunk.length;
        ctx.emit('progress', sent);
        yield chunk;
      }
    }
    return Readable.from(counted());
  };
  const res = await ctx.client.send({
    host: ctx.host,
    method: 'PUT',
    path: withDigest(loc, ctx.digest),
    scopes: [pushScope(ctx.repository)],
    headers: { 'content-type': OCTET, 'content-length': String(ctx.size) },
    body,
    retry: false,
    ...so(ctx),
  });
  await finish(ctx, res);
}
