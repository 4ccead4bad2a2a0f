import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Digest } from '../image/digest.js';
import { sleep } from '../util/abort.js';
import { ChunkReader } from './chunks.js';
import { RegistryClient, pullScope, pushScope } from './client.js';
import { RegistryError, isConnectionError } from './errors.js';
import type { BlobSource, TransferEvent } from './types.js';

export interface UploadOptions {
  signal?: AbortSignal;
  onProgress?: (e: TransferEvent) => void;
  /** Blobs larger than this go up in PATCH chunks of this size (default 8 MiB). */
  chunkSize?: number;
  /** Repositories on the same registry to try a cross-repository mount from. */
  mountFrom?: string[];
}

export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

const SESSION_ATTEMPTS = 5;
const OCTET = 'application/octet-stream';

function location(res: Dispatcher.ResponseData, base: string, what: string): string {
  const loc = res.headers['location'];
  if (typeof loc !== 'string') throw new RegistryError(`${what}: registry sent no upload location`, { status: res.statusCode });
  return new URL(loc, base).toString();
}

/** End offset (exclusive) from a `Range: 0-<last>` header; undefined when absent. */
function rangeEnd(res: Dispatcher.ResponseData): number | undefined {
  const r = res.headers['range'];
  const m = typeof r === 'string' ? /(\d+)-(\d+)\s*$/.exec(r) : null;
  if (!m) return undefined;
  const last = Number(m[2]);
  // Distribution reports an empty upload as "0-0"; one byte is ambiguous with it, so re-send it.
  return last === 0 ? 0 : last + 1;
}

/** Thrown inside a session when only starting a fresh upload session can help. */
class SessionLost extends Error {}

interface Ctx {
  client: RegistryClient;
  host: string;
  repository: string;
  digest: Digest;
  size: number;
  source: BlobSource;
  o: UploadOptions;
  what: string;
  emit: (phase: TransferEvent['phase'], bytes: number) => void;
}

/** HEAD → mount → POST session → monolithic PUT or resumable chunked PATCHes → PUT ?digest=. */
export async function uploadBlob(client: RegistryClient, host: string, repository: string, desc: { digest: Digest; size: number }, source: BlobSource, o: UploadOptions = {}): Promise<UploadOutcome> {
  const what = `blob ${host}/${repository}@${desc.digest}`;
  const emit = (phase: TransferEvent['phase'], bytes: number): void => o.onProgress?.({ kind: 'blob', digest: desc.digest, phase, bytes, total: desc.size });
  const ctx: Ctx = { client, host, repository, digest: desc.digest, size: desc.size, source, o, what, emit };
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
      if (desc.size <= (o.chunkSize ?? 8 * 1024 * 1024)) await putMonolithic(ctx, start);
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

function so(ctx: Ctx): { signal?: AbortSignal } {
  return ctx.o.signal ? { signal: ctx.o.signal } : {};
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
  const res = await ctx.client.send({ host: ctx.host, method: 'POST', path: `/v2/${ctx.repository}/blobs/uploads/`, scopes: [pushScope(ctx.repository)], headers: { 'content-length': '0' }, ...so(ctx) });
  if (res.statusCode !== 202) return RegistryClient.fail(`${ctx.what}: starting upload`, res);
  await res.body.dump();
  return location(res, base, ctx.what);
}

function withDigest(loc: string, digest: Digest): string {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function finish(ctx: Ctx, res: Dispatcher.ResponseData): Promise<void> {
  if (res.statusCode === 201 || res.statusCode === 204) {
    await res.body.dump();
    return;
  }
  if (res.statusCode === 404 || res.statusCode === 416) {
    await res.body.dump();
    throw new SessionLost(`upload session gone (HTTP ${res.statusCode})`);
  }
  return RegistryClient.fail(`${ctx.what}: committing upload`, res);
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

/** Ask the registry how much of the upload it has; the answer also renews the location. */
async function uploadStatus(ctx: Ctx, loc: string, base: string): Promise<{ loc: string; offset: number }> {
  const res = await ctx.client.send({ host: ctx.host, method: 'GET', path: loc, scopes: [pushScope(ctx.repository)], ...so(ctx) });
  await res.body.dump();
  if (res.statusCode !== 204) throw new SessionLost(`upload status HTTP ${res.statusCode}`);
  return { loc: location(res, base, ctx.what), offset: rangeEnd(res) ?? 0 };
}

async function putChunked(ctx: Ctx, firstLoc: string): Promise<void> {
  const chunkSize = ctx.o.chunkSize ?? 8 * 1024 * 1024;
  const { base } = await ctx.client.host(ctx.host, ctx.o.signal);
  const reader = new ChunkReader(ctx.source, ctx.digest, chunkSize, ctx.o.signal);
  let loc = firstLoc;
  let offset = 0;
  let failures = 0;
  try {
    while (offset < ctx.size) {
      const chunk = await reader.read(offset);
      if (chunk.length === 0) throw new RegistryError(`${ctx.what}: source ended at ${offset} of ${ctx.size} bytes`);
      let res: Dispatcher.ResponseData | undefined;
      try {
        res = await ctx.client.send({
          host: ctx.host,
          method: 'PATCH',
          path: loc,
          scopes: [pushScope(ctx.repository)],
          headers: { 'content-type': OCTET, 'content-length': String(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}` },
          body: chunk,
          retry: false,
          ...so(ctx),
        });
      } catch (err) {
        ctx.o.signal?.throwIfAborted();
        if (!(err instanceof RegistryError && err.temporary) || ++failures > 5) throw err;
      }
      if (res?.statusCode === 202) {
        await res.body.dump();
        loc = location(res, base, ctx.what);
        offset = Math.max(rangeEnd(res) ?? offset + chunk.length, 0);
        failures = 0;
        ctx.emit('progress', offset);
        continue;
      }
      if (res !== undefined) {
        if (res.statusCode === 404 || res.statusCode === 416) throw new SessionLost(`chunk refused (HTTP ${res.statusCode})`);
        if (!(res.statusCode >= 500 || res.statusCode === 429) || ++failures > 5) return await RegistryClient.fail(`${ctx.what}: uploading chunk`, res);
        await res.body.dump();
      }
      // The connection dropped or the registry hiccupped mid-chunk: resume from what it has.
      await sleep(200 * 2 ** (failures - 1), ctx.o.signal);
      ({ loc, offset } = await uploadStatus(ctx, loc, base));
    }
  } finally {
    await reader.close();
  }
  const res = await ctx.client.send({
    host: ctx.host,
    method: 'PUT',
    path: withDigest(loc, ctx.digest),
    scopes: [pushScope(ctx.repository)],
    headers: { 'content-type': OCTET, 'content-length': '0' },
    ...so(ctx),
  });
  await finish(ctx, res);
}
