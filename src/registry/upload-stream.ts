/** Large-blob uploads: one streamed PATCH (default) or fixed-size PATCH chunks; both resume. */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { sleep } from '../util/abort.js';
import { ChunkReader } from './chunks.js';
import { RegistryClient, pushScope } from './client.js';
import { RegistryError } from './errors.js';
import { OCTET, SessionLost, commit, location, rangeEnd, so, uploadStatus, type Ctx } from './upload-session.js';

/** The source from `offset` on, reporting progress as undici pulls it (a generator never runs ahead). */
async function sourceFrom(ctx: Ctx, offset: number): Promise<Readable> {
  const stream = await ctx.source.open(ctx.digest, so(ctx));
  async function* from(): AsyncGenerator<Buffer> {
    let pos = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const start = pos;
        pos += chunk.length;
        if (pos <= offset) continue;
        ctx.emit('progress', pos);
        yield start >= offset ? chunk : chunk.subarray(offset - start);
      }
    } finally {
      (stream as { destroy?: () => void }).destroy?.();
    }
  }
  return Readable.from(from());
}

/** Failures in a row of one upload; past MAX_FAILURES the upload gives up. */
interface Failures {
  n: number;
}

const MAX_FAILURES = 5;

/**
 * One PATCH of `length` bytes from `from` on. Undefined when the connection failed in a way worth
 * resuming after (counted); other errors, or too many in a row, are thrown.
 */
async function patch(ctx: Ctx, loc: string, from: number, length: number, body: Buffer | (() => Promise<Readable>), failures: Failures): Promise<Dispatcher.ResponseData | undefined> {
  try {
    return await ctx.client.send({
      host: ctx.host,
      method: 'PATCH',
      path: loc,
      scopes: [pushScope(ctx.repository)],
      headers: { 'content-type': OCTET, 'content-length': String(length), 'content-range': `${from}-${from + length - 1}` },
      body,
      retry: false,
      ...so(ctx),
    });
  } catch (err) {
    ctx.o.signal?.throwIfAborted();
    if (!(err instanceof RegistryError && err.temporary) || ++failures.n > MAX_FAILURES) throw err;
    return undefined;
  }
}

/**
 * A PATCH answered with something other than 202: the session is gone (404/416), or a server
 * error worth resuming after (dumped and counted), or a failure reported as the registry's error.
 */
async function refused(ctx: Ctx, res: Dispatcher.ResponseData, failures: Failures, what: 'upload' | 'chunk'): Promise<void> {
  if (res.statusCode === 404 || res.statusCode === 416) throw new SessionLost(`${what} refused (HTTP ${res.statusCode})`);
  if (!(res.statusCode >= 500 || res.statusCode === 429) || ++failures.n > MAX_FAILURES) {
    await RegistryClient.fail(`${ctx.what}: ${what === 'chunk' ? 'uploading chunk' : 'uploading'}`, res);
  }
  await res.body.dump();
}

/**
 * One PATCH streams the whole blob (no per-chunk round trips, the registry writes as it
 * receives). After a dropped connection the registry says how much it kept and the next PATCH
 * streams the rest from there. `startAt`: the session already holds that many bytes.
 */
export async function putStreamed(ctx: Ctx, firstLoc: string, startAt = 0): Promise<void> {
  const { base } = await ctx.client.host(ctx.host, ctx.o.signal);
  let loc = firstLoc;
  let offset = startAt;
  const failures = { n: 0 };
  while (offset < ctx.size) {
    const from = offset;
    const res = await patch(ctx, loc, from, ctx.size - from, () => sourceFrom(ctx, from), failures);
    if (res?.statusCode === 202) {
      await res.body.dump();
      loc = location(res, base, ctx.what);
      offset = rangeEnd(res) ?? ctx.size;
      if (offset < ctx.size) throw new SessionLost(`registry kept ${offset} of ${ctx.size} bytes of a complete PATCH`);
      break;
    }
    if (res !== undefined) await refused(ctx, res, failures, 'upload');
    await sleep(200 * 2 ** (failures.n - 1), ctx.o.signal);
    ({ loc, offset } = await uploadStatus(ctx, loc, base));
  }
  await commit(ctx, loc);
}

export async function putChunked(ctx: Ctx, firstLoc: string): Promise<void> {
  const chunkSize = ctx.o.chunkSize ?? 8 * 1024 * 1024;
  const { base } = await ctx.client.host(ctx.host, ctx.o.signal);
  const reader = new ChunkReader(ctx.source, ctx.digest, chunkSize, ctx.o.signal);
  let loc = firstLoc;
  let offset = 0;
  const failures = { n: 0 };
  try {
    while (offset < ctx.size) {
      const chunk = await reader.read(offset);
      if (chunk.length === 0) throw new RegistryError(`${ctx.what}: source ended at ${offset} of ${ctx.size} bytes`);
      const res = await patch(ctx, loc, offset, chunk.length, chunk, failures);
      if (res?.statusCode === 202) {
        await res.body.dump();
        loc = location(res, base, ctx.what);
        offset = Math.max(rangeEnd(res) ?? offset + chunk.length, 0);
        failures.n = 0;
        ctx.emit('progress', offset);
        continue;
      }
      if (res !== undefined) await refused(ctx, res, failures, 'chunk');
      // The connection dropped or the registry hiccupped mid-chunk: resume from what it has.
      await sleep(200 * 2 ** (failures.n - 1), ctx.o.signal);
      ({ loc, offset } = await uploadStatus(ctx, loc, base));
    }
  } finally {
    await reader.close();
  }
  await commit(ctx, loc);
}
