/**
 * `ADD <http(s) URL>`: the body is streamed into the blob store (content-addressed, verified
 * against `--checksum` when given), then copied like a file named after the URL path, mode 0600,
 * uid/gid 0, mtime from Last-Modified (else the Unix epoch), as BuildKit's http source does.
 *
 * Bounds: at most MAX_REDIRECTS redirects (http/https only), at most MAX_URL_BYTES of body, and
 * at most urlIdleTimeoutMs() without a byte of it (a server that stalls mid-body fails the step).
 * No credentials are ever sent: URLs with user:password are refused, and no Authorization,
 * cookie or registry credential is attached to the request or to a redirect.
 * Git sources are refused with a clear "not supported" error.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Dispatcher, Response, fetch as undiciFetch } from 'undici';
import type { Digest } from '../image/index.js';
import { describeNetworkError } from '../registry/client.js';
import { makeAgent } from '../registry/tls.js';
import { loadUndici } from '../registry/undici.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';

export const MAX_REDIRECTS = 10;
/** 4 GiB: a larger download is refused (ADD is for files, not for whole disk images). */
export const MAX_URL_BYTES = 4 * 2 ** 30;

/**
 * Longest pause in a body before the download is abandoned. Go's http client, and so BuildKit, has
 * none; but a server that sends headers and then stalls would hang the build for good, which is
 * worse than failing it. Same idea as the registry client's `bodyMs` (120 s there: a registry is
 * ours to retry; a URL is one attempt). TSBUILD_URL_IDLE_TIMEOUT (seconds, 0 = none) overrides it.
 */
export const URL_IDLE_TIMEOUT_MS = 60_000;

export function urlIdleTimeoutMs(env: Record<string, string | undefined> = process.env): number {
  const text = env.TSBUILD_URL_IDLE_TIMEOUT;
  if (text === undefined || text.trim() === '') return URL_IDLE_TIMEOUT_MS;
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text)) {
    throw new TsbuildError('USAGE', `TSBUILD_URL_IDLE_TIMEOUT=${JSON.stringify(text)}: expected a number of seconds (0 for no limit)`);
  }
  // undici takes whole milliseconds; a tiny non-zero value must not round down to "no limit".
  const ms = Math.round(Number(text) * 1000);
  return Number(text) > 0 ? Math.max(1, ms) : 0;
}

export function isUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^git@/.test(source);
}

/** Git refs as BuildKit recognises them (git://, ssh, git@host:, *.git URLs, with optional #ref). */
export function isGitSource(source: string): boolean {
  if (/^(git|ssh|git\+ssh|git\+https?):\/\//i.test(source) || /^git@[^:]+:/.test(source)) return true;
  if (!/^https?:\/\//i.test(source)) return false;
  const path = source.replace(/#.*$/, '').replace(/\?.*$/, '');
  return /\.git\/?$/.test(path);
}

/**
 * BuildKit's file name for a URL (dockerfile2llb): path.Base of the decoded path, `__unnamed__`
 * when that is empty, `/` or `.`. Decoding comes first, so `%2F` splits segments (`/a%2Fb` → `b`)
 * and a name can still be `..`, hold a NUL or be too long: see unusableFileName.
 */
export function urlFileName(url: URL): string {
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    path = url.pathname; // not valid percent-encoding: taken as written, as the request sends it
  }
  const base = posix.basename(path);
  return base === '' || base === '/' || base === '.' ? '__unnamed__' : base;
}

/**
 * Why `name` cannot be a file in a directory, or undefined when it can. BuildKit's newest http
 * source rewrites such names (SafeFileName) and its COPY then fails to find the file; older ones
 * wrote `..` next to the destination. A clear error is the useful version of both.
 */
export function unusableFileName(name: string): string | undefined {
  if (name === '..') return 'it names the parent directory';
  if (name.includes('\0')) return 'it holds a NUL byte';
  if (Buffer.byteLength(name) > 255) return 'it is longer than 255 bytes';
  return undefined;
}

export function parseChecksum(text: string): Digest {
  if (!/^sha256:[a-f0-9]{64}$/.test(text)) {
    throw new TsbuildError('DOCKERFILE', `invalid --checksum ${JSON.stringify(text)}: expected sha256:<64 hex digits>`);
  }
  return text as Digest;
}

export interface Downloaded {
  digest: Digest;
  size: number;
  /** Last-Modified in ms, else 0 (BuildKit uses the Unix epoch). */
  mtimeMs: number;
  /** The download put a blob the store did not have. */
  created: boolean;
}

/**
 * Streams `url` into the store's blobs. With `expected`, a body hashing to anything else is
 * an error and nothing is stored.
 */
export async function downloadToBlob(store: Store, source: string, options: { expected?: Digest; signal?: AbortSignal; label?: string } = {}): Promise<Downloaded> {
  const idleMs = urlIdleTimeoutMs();
  const { fetch } = await loadUndici();
  // undici's own fetch with our agent, not the global one: the agent trusts the NODE_EXTRA_CA_CERTS
  // that the bin/tsbuild launcher kept from Node's start-up (registry/tls.ts).
  // The same bound before the headers: a server that accepts and never answers hung for undici's 300 s.
  const dispatcher = await makeAgent({ ca: [] }, true, { bodyTimeout: idleMs, headersTimeout: idleMs });
  try {
    return await download(store, source, { ...options, idleMs }, fetch, dispatcher);
  } finally {
    await dispatcher.destroy();
  }
}

async function download(
  store: Store,
  source: string,
  options: { expected?: Digest; signal?: AbortSignal; label?: string; idleMs: number },
  fetch: typeof undiciFetch,
  dispatcher: Dispatcher,
): Promise<Downloaded> {
  const { signal } = options;
  // What errors name: the instruction (`ADD URL`) or, for a build context, the URL alone.
  const what = options.label ?? `ADD ${source}`;
  let url = parseHttpUrl(source);
  let response: Response | undefined;
  for (let hop = 0; ; hop++) {
    response = await fetch(url, { redirect: 'manual', credentials: 'omit', dispatcher, ...(signal !== undefined ? { signal } : {}) }).catch((err: unknown) => {
      if (signal?.aborted === true) throw err;
      throw networkFailure(`${what}: request to ${url.href} failed`, err, options.idleMs);
    });
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || location === null) break;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new TsbuildError('CONTEXT', `${what}: more than ${MAX_REDIRECTS} redirects`);
    url = parseHttpUrl(new URL(location, url).href, source);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new TsbuildError('CONTEXT', `${what}: ${url.href} answered ${response.status} ${response.statusText}`);
  }
  const length = Number(response.headers.get('content-length') ?? NaN);
  if (length > MAX_URL_BYTES) {
    await response.body?.cancel();
    throw new TsbuildError('CONTEXT', `${what}: ${length} bytes is over the ${MAX_URL_BYTES}-byte limit`);
  }
  const lastModified = Date.parse(response.headers.get('last-modified') ?? '');
  const body = response.body === null ? Readable.from([]) : Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  let total = 0;
  const hash = createHash('sha256');
  const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const bounded = (async function* () {
    for (;;) {
      const next = await chunks.next().catch((err: unknown) => {
        if (signal?.aborted === true) throw err;
        throw networkFailure(`${what}: reading ${url.href} failed`, err, options.idleMs);
      });
      if (next.done === true) break;
      const chunk = next.value;
      total += chunk.length;
      if (total > MAX_URL_BYTES) throw new TsbuildError('CONTEXT', `${what}: body is over the ${MAX_URL_BYTES}-byte limit`);
      hash.update(chunk);
      yield chunk;
    }
  })();
  try {
    const put = await store.blobs.put(bounded, { ...(options.expected !== undefined ? { expected: options.expected } : {}), ...(signal !== undefined ? { signal } : {}) });
    return { ...put, mtimeMs: Number.isNaN(lastModified) ? 0 : lastModified };
  } catch (err) {
    if (options.expected !== undefined && err instanceof TsbuildError && err.code === 'STORE') {
      const got = `sha256:${hash.digest('hex')}`;
      throw new TsbuildError('CONTEXT', `${what}: checksum mismatch: expected ${options.expected}, got ${got}`, { cause: err });
    }
    throw err;
  } finally {
    body.destroy();
  }
}

/**
 * `failed` and what happened. undici's fetch wraps transport failures in a bare TypeError ('fetch
 * failed' before the headers, 'terminated' in the body); what happened is its cause. Headers and
 * body are both bounded by the idle timeout, and either running out gets the hint.
 */
function networkFailure(failed: string, err: unknown, idleMs: number): TsbuildError {
  const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
  const reason = describeNetworkError(cause, { headersMs: idleMs, bodyMs: idleMs });
  const timedOut = reason.startsWith('no response') || reason.startsWith('response stalled');
  return new TsbuildError('CONTEXT', `${failed}: ${reason}`, {
    cause: err,
    ...(timedOut ? { hint: 'a slow server: set TSBUILD_URL_IDLE_TIMEOUT to more seconds (0: wait forever)' } : {}),
  });
}

function parseHttpUrl(text: string, original = text): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    throw new TsbuildError('DOCKERFILE', `ADD ${original}: invalid URL`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TsbuildError('DOCKERFILE', `ADD ${original}: unsupported URL scheme ${url.protocol} (http and https only)`);
  }
  if (url.username !== '' || url.password !== '') {
    // The URL is named without them: an error must not print a password.
    const shown = new URL(url.href);
    shown.username = '';
    shown.password = '';
    throw new TsbuildError('DOCKERFILE', `ADD ${shown.href}: credentials in URLs are not supported (they would be stored in the image history)`);
  }
  return url;
}
