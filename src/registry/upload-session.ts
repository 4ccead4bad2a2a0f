/** The pieces of an upload session every upload mode shares: context, locations, ranges, commit. */
import type { Dispatcher } from 'undici';
import type { Digest } from '../image/digest.js';
import { RegistryClient, pushScope } from './client.js';
import { RegistryError } from './errors.js';
import type { BlobSource, TransferEvent } from './types.js';
import type { UploadOptions } from './upload.js';

export const OCTET = 'application/octet-stream';

export function location(res: Dispatcher.ResponseData, base: string, what: string): string {
  const loc = res.headers['location'];
  if (typeof loc !== 'string') throw new RegistryError(`${what}: registry sent no upload location`, { status: res.statusCode });
  return new URL(loc, base).toString();
}

/** End offset (exclusive) from a `Range: 0-<last>` header; undefined when absent. */
export function rangeEnd(res: Dispatcher.ResponseData): number | undefined {
  const r = res.headers['range'];
  const m = typeof r === 'string' ? /(\d+)-(\d+)\s*$/.exec(r) : null;
  if (!m) return undefined;
  const last = Number(m[2]);
  // Distribution reports an empty upload as "0-0"; one byte is ambiguous with it, so re-send it.
  return last === 0 ? 0 : last + 1;
}

/** Thrown inside a session when only starting a fresh upload session can help. */
export class SessionLost extends Error {}

export interface Ctx {
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
/** The context of one blob's upload: what errors call it and how its progress is reported. */
export function blobCtx(client: RegistryClient, host: string, repository: string, desc: { digest: Digest; size: number }, source: BlobSource, o: UploadOptions): Ctx {
  const emit = (phase: TransferEvent['phase'], bytes: number): void => o.onProgress?.({ kind: 'blob', digest: desc.digest, phase, bytes, total: desc.size });
  return { client, host, repository, digest: desc.digest, size: desc.size, source, o, what: `blob ${host}/${repository}@${desc.digest}`, emit };
}

export function so(ctx: Ctx): { signal?: AbortSignal } {
  return ctx.o.signal ? { signal: ctx.o.signal } : {};
}
export function withDigest(loc: string, digest: Digest): string {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u.toString();
}

export async function finish(ctx: Ctx, res: Dispatcher.ResponseData): Promise<void> {
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
/** Ask the registry how much of the upload it has; the answer also renews the location. */
export async function uploadStatus(ctx: Ctx, loc: string, base: string): Promise<{ loc: string; offset: number }> {
  const res = await ctx.client.send({ host: ctx.host, method: 'GET', path: loc, scopes: [pushScope(ctx.repository)], ...so(ctx) });
  await res.body.dump();
  if (res.statusCode !== 204) throw new SessionLost(`upload status HTTP ${res.statusCode}`);
  return { loc: location(res, base, ctx.what), offset: rangeEnd(res) ?? 0 };
}

/** PUT ?digest= with an empty body: the registry verifies and commits what it received. */
export async function commit(ctx: Ctx, loc: string): Promise<void> {
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
