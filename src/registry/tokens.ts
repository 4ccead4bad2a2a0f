import type { Dispatcher } from 'undici';
import { readBounded } from './body.js';
import { loadUndici } from './undici.js';
import { singleflight } from '../util/limit.js';
import { RegistryError, errorFromResponse, isConnectionError } from './errors.js';
import type { Challenge } from './challenge.js';
import type { Credentials } from './types.js';

interface CachedToken {
  token: string;
  expiresAt: number;
}

interface TokenResponse {
  token?: string;
  access_token?: string;
  expires_in?: number;
  issued_at?: string;
}

/** Docker's default when a token server omits expires_in. */
const DEFAULT_TTL_S = 60;
/** A token response is a small JSON document; more than this is not one. */
const MAX_TOKEN_RESPONSE = 1 << 20;
/** Refresh a little before expiry so a token never dies in flight. */
const MARGIN_MS = 5_000;

export function basicHeader(c: Credentials): string | undefined {
  if (c.username === undefined || c.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

/** Bearer tokens per (registry, scope set), cached until shortly before they expire. */
export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  /** Parallel requests needing the same token share one token-server round trip. */
  readonly #inflight = singleflight<string, string>();

  static key(host: string, scopes: string[]): string {
    return `${host}|${[...scopes].sort().join(' ')}`;
  }

  get(host: string, scopes: string[]): string | undefined {
    const t = this.#tokens.get(TokenCache.key(host, scopes));
    return t !== undefined && t.expiresAt > Date.now() ? t.token : undefined;
  }

  invalidate(host: string, scopes: string[]): void {
    this.#tokens.delete(TokenCache.key(host, scopes));
  }

  fetch(
    host: string,
    challenge: Challenge,
    scopes: string[],
    creds: Credentials | undefined,
    o: { dispatcher?: Dispatcher; userAgent: string; signal?: AbortSignal },
  ): Promise<string> {
    return this.#inflight(TokenCache.key(host, scopes), () => this.#fetch(host, challenge, scopes, creds, o));
  }

  async #fetch(
    host: string,
    challenge: Challenge,
    scopes: string[],
    creds: Credentials | undefined,
    o: { dispatcher?: Dispatcher; userAgent: string; signal?: AbortSignal },
  ): Promise<string> {
    if (creds?.registryToken !== undefined) return creds.registryToken;
    const realm = challenge.params['realm'];
    if (realm === undefined) throw new RegistryError(`${host}: bearer challenge without a realm`);
    const service = challenge.params['service'];
    const url = new URL(realm);
    let res: Dispatcher.ResponseData;
    try {
      if (creds?.identityToken !== undefined) {
        // OAuth2 refresh-token grant, as docker does with an identity token.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'tsbuild' });
        if (service !== undefined) form.set('service', service);
        if (scopes.length > 0) form.set('scope', scopes.join(' '));
        res = await (await loadUndici()).request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': o.userAgent },
          body: form.toString(),
          ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
      } else {
        if (service !== undefined) url.searchParams.set('service', service);
        for (const s of scopes) url.searchParams.append('scope', s);
        const headers: Record<string, string> = { 'user-agent': o.userAgent };
        const basic = creds ? basicHeader(creds) : undefined;
        if (basic !== undefined) headers['authorization'] = basic;
        res = await (await loadUndici()).request(url, {
          method: 'GET',
          headers,
          ...(o.dispatcher ? { dispatcher: o.dispatcher } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
      }
    } catch (err) {
      throw new RegistryError(`${host}: token server ${url.host} unreachable`, { cause: err, temporary: isConnectionError(err) });
    }
    const { text, truncated } = await readBounded(res.body, MAX_TOKEN_RESPONSE);
    if (res.statusCode !== 200) throw errorFromResponse(`${host}: token request`, res.statusCode, text);
    if (truncated) throw new RegistryError(`${host}: token server's answer is over ${MAX_TOKEN_RESPONSE >> 20} MiB`);
    let body: TokenResponse;
    try {
      body = JSON.parse(text) as TokenResponse;
    } catch (err) {
      throw new RegistryError(`${host}: token server returned malformed JSON`, { cause: err });
    }
    const token = body.token ?? body.access_token;
    if (token === undefined || token === '') throw new RegistryError(`${host}: token server returned no token`);
    const ttl = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TTL_S) * 1000;
    const issued = body.issued_at !== undefined ? Date.parse(body.issued_at) : NaN;
    const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
    this.#tokens.set(TokenCache.key(host, scopes), { token, expiresAt: start + ttl - Math.min(MARGIN_MS, ttl / 2) });
    return token;
  }
}
