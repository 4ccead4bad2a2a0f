/**
 * Uploading a blob while it is still being made (a layer being compressed): its bytes stream to
 * the registry in one PATCH as they come, and the digest, known only at the end, goes in the
 * closing PUT. Compression and upload then overlap instead of running one after the other, and
 * the blob is not read back from disk to be sent.
 *
 * The producer keeps its own complete copy (the store). If the live stream breaks — a reset, a
 * refused PATCH — writes stop being taken and `finish` completes the upload from that copy,
 * continuing at the offset the registry reports, as any interrupted upload does; if the session
 * itself is gone, it starts over with `uploadBlob`.
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Digest } from '../image/digest.js';
import { pushScope, type RegistryClient } from './client.js';
import { RegistryError, isConnectionError } from './errors.js';
import type { BlobSource } from './types.js';
import { OCTET, SessionLost, blobCtx, commit, location, rangeEnd, uploadStatus } from './upload-session.js';
import { putStreamed } from './upload-stream.js';
import { openSession, uploadBlob, type UploadOptions, type UploadOutcome } from './upload.js';

export class LiveUpload {
  readonly #client: RegistryClient;
  readonly #host: string;
  readonly #repository: string;
  readonly #o: UploadOptions;
  readonly #base: string;
  #loc: string;
  #sent = 0;
  #broken = false;
  #ended = false;
  /** The chunk waiting for the request body to take it, and who to tell when it did. */
  #slot: { chunk: Buffer; taken: () => void } | undefined;
  #wake: (() => void) | undefined;
  readonly #response: Promise<Dispatcher.ResponseData | undefined>;

  private constructor(client: RegistryClient, host: string, repository: string, o: UploadOptions, base: string, loc: string) {
    this.#client = client;
    this.#host = host;
    this.#repository = repository;
    this.#o = o;
    this.#base = base;
    this.#loc = loc;
    let bodies = 0;
    this.#response = client
      .send({
        host,
        method: 'PATCH',
        path: loc,
        scopes: [pushScope(repository)],
        headers: { 'content-type': OCTET },
        // Not replayable: a second request (an auth retry) would send nothing; finish() resumes instead.
        body: () => (++bodies === 1 ? Promise.resolve(Readable.from(this.#body())) : Promise.reject(new SessionLost('live upload body is not replayable'))),
        retry: false,
        ...(o.signal ? { signal: o.signal } : {}),
      })
      .catch(() => undefined)
      .finally(() => this.#break());
  }

  /** Opens the upload session (POST). */
  static async start(client: RegistryClient, host: string, repository: string, o: UploadOptions = {}): Promise<LiveUpload> {
    const { base } = await client.host(host, o.signal);
    const loc = await openSession({ client, host, repository, o, what: `upload to ${host}/${repository}` }, base);
    return new LiveUpload(client, host, repository, o, base, loc);
  }

  /** Hands one chunk to the request body; resolves once it is taken (backpressure) or the stream broke. */
  write(chunk: Buffer): Promise<void> {
    if (this.#broken || this.#ended) return Promise.resolve();
    return new Promise((resolve) => {
      this.#slot = { chunk, taken: resolve };
      this.#wake?.();
    });
  }

  async *#body(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        while (this.#slot === undefined && !this.#ended && !this.#broken) await new Promise<void>((r) => (this.#wake = r));
        const slot = this.#slot;
        if (slot === undefined) return;
        this.#slot = undefined;
        this.#sent += slot.chunk.length;
        try {
          yield slot.chunk;
        } finally {
          // Also when the request stops right after this chunk (a reset): the writer must not wait forever.
          slot.taken();
        }
      }
    } finally {
      this.#break();
    }
  }

  #break(): void {
    this.#broken = true;
    this.#slot?.taken();
    this.#slot = undefined;
    this.#wake?.();
  }

  /** The blob will not be finished (its production failed): end the request so nothing waits on it. */
  cancel(): void {
    this.#break();
  }

  /** Ends the stream and commits `desc`; from `source` (the complete copy) for whatever did not arrive live. */
  async finish(desc: { digest: Digest; size: number }, source: BlobSource): Promise<UploadOutcome> {
    this.#ended = true;
    this.#wake?.();
    const res = await this.#response;
    const ctx = blobCtx(this.#client, this.#host, this.#repository, desc, source, this.#o);
    const { what } = ctx;
    try {
      let offset: number;
      if (res?.statusCode === 202) {
        await res.body.dump();
        this.#loc = location(res, this.#base, what);
        offset = rangeEnd(res) ?? this.#sent;
      } else {
        await res?.body.dump();
        ({ loc: this.#loc, offset } = await uploadStatus(ctx, this.#loc, this.#base));
      }
      if (offset < desc.size) await putStreamed(ctx, this.#loc, offset);
      else await commit(ctx, this.#loc);
      ctx.emit('done', desc.size);
      return 'uploaded';
    } catch (err) {
      this.#o.signal?.throwIfAborted();
      // The session is gone or the registry is unreachable for now: uploadBlob starts over from
      // the complete copy with its own retries and backoff.
      const retryable = err instanceof SessionLost || isConnectionError(err) || (err instanceof RegistryError && err.temporary);
      if (!retryable) throw err;
      return uploadBlob(this.#client, this.#host, this.#repository, desc, source, this.#o);
    }
  }
}
