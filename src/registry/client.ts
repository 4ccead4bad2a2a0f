import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { readBounded } from './body.js';
import { loadUndici } from './undici.js';
import { sleep } from '../util/abort.js';
import { AbortError } from '../util/errors.js';
import { singleflight } from '../util/limit.js';
import { isLocalRegistry, registryHost } from '../image/reference.js';
import { pickChallenge, type Challenge } from './challenge.js';
import { DockerConfigAuth } from './dockerconfig.js';
import { RegistryError, errorFromResponse, isConnectionError, isTemporaryStatus } from './errors.js';
import { loadRegistriesConf, type RegistriesConf } from './mirrors.js';
import { isCertificateError, isNotTlsError, makeAgent, readCertsDir } from './tls.js';
import { TokenCache, basicHeader } from './tokens.js';
import type { AuthProvider, Credentials, RetryOptions } from './types.js';

export interface RegistryClientOptions {
  auth?: AuthProvider;
  /** Hosts (host[:port]) spoken to over HTTPS without verification, or plain HTTP. */
  insecureRegistries?: string[];
  /** Pull mirrors per registry name, e.g. { 'docker.io': ['mirror.local:5000'] }; origin is the fallback. */
  mirrors?: Record<string, string[]>;
  certsDir?: string;
  userAgent?: string;
  retry?: RetryOptions;
  /**
   * containers-registries.conf(5) to read mirrors and insecure registries from (default
   * `$CONTAINERS_REGISTRIES_CONF` or /etc/containers/registries.conf); `false` reads none.
   */
  registriesConf?: string | false;
  timeouts?: TimeoutOptions;
}

export interface TimeoutOptions {
  /** Waiting for response headers once a request is sent (default 300 000 ms). */
  headersMs?: number;
  /** Longest pause between two pieces of a response body, so a stalled server fails (default 120 000 ms). */
  bodyMs?: number;
}

export type Body = Buffer | string | (() => Promise<Readable>);

export interface RequestSpec {
  /** Registry name as in a reference (e.g. "docker.io", "127.0.0.1:5000"). */
  host: string;
  method: Dispatcher.HttpMethod;
  /** "/v2/…" or an absolute URL from a Location header. */
  path: string;
  scopes: string[];
  headers?: Record<string, string>;
  body?: Body;
  signal?: AbortSignal;
  /** Retry temporary failures (default true). Off for requests whose replay is not safe. */
  retry?: boolean;
  /** Follow redirects for GET/HEAD (default true); Authorization never crosses origins. */
  followRedirects?: boolean;
}

interface HostState {
  base: string;
  dispatcher: Dispatcher;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** The transport every registry call goes through: scheme, TLS, auth, retries, redirects. */
export class RegistryClient {
  readonly auth: AuthProvider;
  readonly mirrors: Record<string, string[]>;
  readonly userAgent: string;
  readonly #insecure: Set<string>;
  readonly #certsDir: string;
  readonly #retry: Required<RetryOptions>;
  readonly timeouts: Required<TimeoutOptions>;
  readonly #confPath: string | false | undefined;
  #conf: Promise<RegistriesConf> | undefined;
  readonly #hosts = new Map<string, Promise<HostState>>();
  readonly #challenges = new Map<string, Challenge | null>();
  readonly #creds = new Map<string, Promise<Credentials | undefined>>();
  readonly #tokens = new TokenCache();
  readonly #agents: Agent[] = [];
  /** Agent for other hosts (token realms, blob storage after a redirect): never gets registry TLS settings. */
  #foreign: Promise<Agent> | undefined;
  /** De-duplicates blob uploads by "<registry>/<repo>@<digest>" across concurrent pushes. */
  readonly uploadOnce = singleflight<string, unknown>();

  constructor(options: RegistryClientOptions = {}) {
    this.auth = options.auth ?? new DockerConfigAuth();
    this.mirrors = options.mirrors ?? {};
    this.userAgent = options.userAgent ?? 'tsbuild/0.1';
    this.#insecure = new Set(options.insecureRegistries ?? []);
    this.#certsDir = options.certsDir ?? '/etc/docker/certs.d';
    this.#retry = { attempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, ...options.retry };
    this.timeouts = { headersMs: 300_000, bodyMs: 120_000, ...options.timeouts };
    this.#confPath = options.registriesConf;
  }

  /** Attempts and backoff for callers that retry on their own (streamed downloads). */
  get retryPolicy(): Readonly<Required<RetryOptions>> {
    return this.#retry;
  }

  /** registries.conf, read once per client (never when `registriesConf: false`). */
  registriesConf(): Promise<RegistriesConf> {
    if (this.#confPath === false) return Promise.resolve({ mirrors: {}, insecure: [] });
    this.#conf ??= loadRegistriesConf(...(this.#confPath !== undefined ? [this.#confPath] : []));
    return this.#conf;
  }

  /**
   * Hosts to pull `registry` from, in order: explicit `mirrors`, registries.conf mirrors (the
   * digest-only ones just for digest references), then the origin.
   */
  async pullHosts(registry: string, byDigest: boolean): Promise<string[]> {
    const conf = await this.registriesConf();
    const fromConf = (conf.mirrors[registry] ?? []).filter((m) => byDigest || !m.digestOnly).map((m) => m.host);
    return [...new Set([...(this.mirrors[registry] ?? []), ...fromConf, registry])];
  }

  #foreignAgent(): Promise<Agent> {
    this.#foreign ??= makeAgent({ ca: [] }, true);
    return this.#foreign;
  }

  async close(): Promise<void> {
    this.#hosts.clear();
    await Promise.all([...this.#agents.map((a) => a.close()), ...(this.#foreign !== undefined ? [this.#foreign.then((a) => a.close())] : [])]);
  }

  /** Base URL and dispatcher for a registry, probing HTTPS, then HTTP, only where plain HTTP is allowed. */
  host(host: string, signal?: AbortSignal): Promise<HostState> {
    let p = this.#hosts.get(host);
    if (!p) {
      p = this.#resolveHost(host, signal);
      this.#hosts.set(host, p);
      p.catch(() => this.#hosts.delete(host));
    }
    return p;
  }

  async #resolveHost(host: string, signal?: AbortSignal): Promise<HostState> {
    const api = registryHost(host);
    const files = await readCertsDir(this.#certsDir, api);
    const agent = await makeAgent(files, true);
    this.#agents.push(agent);
    const confInsecure = (await this.registriesConf()).insecure;
    const insecure = this.#insecure.has(host) || this.#insecure.has(api) || confInsecure.includes(host) || confInsecure.includes(api);
    if (!insecure && !isLocalRegistry(api)) return { base: `https://${api}`, dispatcher: agent };
    // Docker's rule for insecure registries: prefer HTTPS, fall back to plain HTTP.
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await (await loadUndici()).request(`https://${api}/v2/`, { method: 'GET', dispatcher: agent, headers: { 'user-agent': this.userAgent }, ...this.#timeoutOpts(), ...(signal ? { signal } : {}) });
        this.#noteChallenge(host, res);
        await res.body.dump();
        return { base: `https://${api}`, dispatcher: agent };
      } catch (err) {
        if (isNotTlsError(err)) {
          const base = `http://${api}`;
          await this.#ping(host, base, agent, signal);
          return { base, dispatcher: agent };
        }
        if (isCertificateError(err)) {
          if (!insecure) {
            throw new RegistryError(`${host}: TLS certificate not trusted`, {
              cause: err,
              hint: `put the registry CA in ${this.#certsDir}/${api}/ca.crt or list ${api} as an insecure registry`,
            });
          }
          const lax = await makeAgent(files, false);
          this.#agents.push(lax);
          return { base: `https://${api}`, dispatcher: lax };
        }
        if (signal?.aborted) throw new AbortError(signal.reason);
        if (!isConnectionError(err) || attempt >= this.#retry.attempts) {
          throw new RegistryError(`${host}: cannot connect`, { cause: err, temporary: isConnectionError(err) });
        }
        await sleep(this.#backoff(attempt), signal);
      }
    }
  }

  /** Learn the auth challenge up front; a failure here is not fatal (the first request retries). */
  async #ping(host: string, base: string, dispatcher: Dispatcher, signal?: AbortSignal): Promise<void> {
    try {
      const res = await (await loadUndici()).request(`${base}/v2/`, { method: 'GET', dispatcher, headers: { 'user-agent': this.userAgent }, ...this.#timeoutOpts(), ...(signal ? { signal } : {}) });
      this.#noteChallenge(host, res);
      await res.body.dump();
    } catch {
      // the real request reports connection problems, with retries
    }
  }

  #noteChallenge(host: string, res: Dispatcher.ResponseData): void {
    if (res.statusCode !== 401) {
      if (!this.#challenges.has(host)) this.#challenges.set(host, null);
      return;
    }
    const h = res.headers['www-authenticate'];
    const challenge = pickChallenge(Array.isArray(h) ? h.join(', ') : h);
    if (challenge) this.#challenges.set(host, challenge);
  }

  #credentials(host: string, signal?: AbortSignal): Promise<Credentials | undefined> {
    let p = this.#creds.get(host);
    if (!p) {
      p = this.auth.credentials(host, signal ? { signal } : {});
      this.#creds.set(host, p);
      p.catch(() => this.#creds.delete(host));
    }
    return p;
  }

  /** Authorization header for a request, from the last challenge this registry sent. */
  async #authorization(host: string, scopes: string[], rejected: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.#challenges.get(host);
    if (!challenge) return undefined;
    const creds = await this.#credentials(host, signal);
    if (challenge.scheme === 'basic') return creds ? basicHeader(creds) : undefined;
    if (challenge.scheme !== 'bearer') return undefined;
    // Drop the token the registry just refused, but not a newer one a parallel request fetched.
    if (rejected !== undefined && rejected === `Bearer ${this.#tokens.get(host, scopes) ?? ''}`) this.#tokens.invalidate(host, scopes);
    const cached = this.#tokens.get(host, scopes);
    if (cached !== undefined) return `Bearer ${cached}`;
    const realmHost = new URL(challenge.params['realm'] ?? 'http://invalid').host;
    const { dispatcher } = await this.host(host, signal);
    const token = await this.#tokens.fetch(host, challenge, scopes, creds, {
      userAgent: this.userAgent,
      ...(realmHost === registryHost(host) ? { dispatcher } : { dispatcher: await this.#foreignAgent() }),
      ...(signal ? { signal } : {}),
    });
    return `Bearer ${token}`;
  }

  #timeoutOpts(): { headersTimeout: number; bodyTimeout: number } {
    return { headersTimeout: this.timeouts.headersMs, bodyTimeout: this.timeouts.bodyMs };
  }

  #backoff(attempt: number, retryAfter?: string | string[]): number {
    const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    if (header !== undefined) {
      const secs = Number(header);
      const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(header) - Date.now();
      if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, this.#retry.maxDelayMs);
    }
    const exp = this.#retry.baseDelayMs * 2 ** (attempt - 1);
    return Math.min(exp * (0.75 + Math.random() * 0.5), this.#retry.maxDelayMs);
  }

  /**
   * Send a request; returns the final response whatever its status (callers decide what is an
   * error), after auth challenges, redirects and retries of temporary failures.
   */
  async send(spec: RequestSpec): Promise<Dispatcher.ResponseData> {
    const retry = spec.retry ?? true;
    let authRetried = false;
    let rejected: string | undefined;
    for (let attempt = 1; ; attempt++) {
      const { base, dispatcher } = await this.host(spec.host, spec.signal);
      const url = new URL(spec.path, base);
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...spec.headers };
      let res: Dispatcher.ResponseData;
      try {
        const authz = await this.#authorization(spec.host, spec.scopes, rejected, spec.signal);
        if (authz !== undefined) headers['authorization'] = authz;
        rejected = undefined;
        res = await this.#dispatch(url, spec, headers, dispatcher);
      } catch (err) {
        if (spec.signal?.aborted) throw new AbortError(spec.signal.reason);
        const temporary = isConnectionError(err) || (err instanceof RegistryError && err.temporary);
        if (retry && temporary && attempt < this.#retry.attempts) {
          await sleep(this.#backoff(attempt), spec.signal);
          continue;
        }
        if (err instanceof RegistryError) throw err;
        throw new RegistryError(`${spec.host}: ${spec.method} ${url.pathname} failed: ${describeNetworkError(err, this.timeouts)}`, { cause: err, temporary });
      }
      if (res.statusCode === 401 && !authRetried) {
        const before = this.#challenges.get(spec.host);
        this.#noteChallenge(spec.host, res);
        const after = this.#challenges.get(spec.host);
        await res.body.dump();
        // Retry once with (fresh) credentials; without a usable challenge the 401 is final.
        if (after || before) {
          authRetried = true;
          rejected = headers['authorization'];
          attempt--;
          continue;
        }
        return res;
      }
      if (retry && isTemporaryStatus(res.statusCode) && attempt < this.#retry.attempts) {
        const delay = this.#backoff(attempt, res.headers['retry-after']);
        await res.body.dump();
        await sleep(delay, spec.signal);
        continue;
      }
      return res;
    }
  }

  async #dispatch(url: URL, spec: RequestSpec, headers: Record<string, string>, dispatcher: Dispatcher): Promise<Dispatcher.ResponseData> {
    const origin = url.origin;
    let current = url;
    let method = spec.method;
    let hdrs = headers;
    for (let hop = 0; ; hop++) {
      const body = typeof spec.body === 'function' ? await spec.body() : spec.body;
      const sameOrigin = current.origin === origin;
      const res = await (await loadUndici()).request(current, {
        method,
        headers: hdrs,
        ...(body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body } : {}),
        dispatcher: sameOrigin ? dispatcher : await this.#foreignAgent(),
        ...this.#timeoutOpts(),
        ...(spec.signal ? { signal: spec.signal } : {}),
      });
      const location = res.headers['location'];
      const follow = (spec.followRedirects ?? true) && (method === 'GET' || method === 'HEAD');
      if (!follow || !REDIRECTS.has(res.statusCode) || typeof location !== 'string' || hop >= 5) return res;
      await res.body.dump();
      current = new URL(location, current);
      if (current.origin !== origin) {
        // Blob downloads redirect to object storage: credentials stay with the registry.
        hdrs = Object.fromEntries(Object.entries(hdrs).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      if (res.statusCode === 303) method = 'GET';
    }
  }

  /** Read a failed response's body and throw the RegistryError describing it. */
  static async fail(what: string, res: Dispatcher.ResponseData): Promise<never> {
    let text = '';
    try {
      text = (await readBounded(res.body, 64 * 1024)).text;
    } catch {
      // the body is only decoration for the message
    }
    throw errorFromResponse(what, res.statusCode, text);
  }
}

/** A one-line reason for a transport failure; timeouts say which limit was hit. */
export function describeNetworkError(err: unknown, t?: Required<TimeoutOptions>): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return `no response${t ? ` within ${t.headersMs / 1000}s` : ' (timeout)'}`;
  if (code === 'UND_ERR_BODY_TIMEOUT') return `response stalled${t ? ` (no data for ${t.bodyMs / 1000}s)` : ' (timeout)'}`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timeout';
  return code !== '' ? `connection error (${code})` : 'connection error';
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

