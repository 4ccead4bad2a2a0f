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

/**
 * One PATCH streams the whole blob (no per-chunk round trips, the registry writes as it
 * receives). After a dropped connection the registry says how much it kept and the next PATCH
 * streams the rest from there.
 */
export async function putStreamed(ctx: Ctx, firstLoc: string): Promise<void> {
  const { base } = await ctx.client.host(ctx.host, ctx.o.signal);
  let loc = firstLoc;
  let offset = 0;
  let failures = 0;
  while (offset < ctx.size) {
    const from = offset;
    let res: Dispatcher.ResponseData | undefined;
    try {
      res = await ctx.client.send({
        host: ctx.host,
        method: 'PATCH',
        path: loc,
        scopes: [pushScope(ctx.repository)],
        headers: { 'content-type': OCTET, 'content-length': String(ctx.size - from), 'content-range': `${from}-${ctx.size - 1}` },
        body: () => sourceFrom(ctx, from),
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
      offset = rangeEnd(res) ?? ctx.size;
      if (offset < ctx.size) throw new SessionLost(`registry kept ${offset} of ${ctx.size} bytes of a complete PATCH`);
      break;
    }
    if (res !== undefined) {
      if (res.statusCode === 404 || res.statusCode === 416) throw new SessionLost(`upload refused (HTTP ${res.statusCode})`);
      if (!(res.statusCode >= 500 || res.statusCode === 429) || ++failures > 5) return await RegistryClient.fail(`${ctx.what}: uploading`, res);
      await res.body.dump();
    }
    await sleep(200 * 2 ** (failures - 1), ctx.o.signal);
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
  await commit(ctx, loc);
}
