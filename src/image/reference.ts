import { TsbuildError } from '../util/errors.js';
import { isDigest, type Digest } from './digest.js';

/**
 * Image references with docker's normalisation (distribution/reference): a first path component
 * is a registry host only if it has a '.', a ':' or is "localhost"; otherwise the image lives on
 * Docker Hub, and single-component Hub names live under "library/".
 */
export interface Reference {
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
  /** Full normalised form, e.g. "docker.io/library/busybox:latest". */
  toString(): string;
  /** Short form docker prints, e.g. "busybox:latest". */
  familiar(): string;
}

export const DOCKER_HUB = 'docker.io';
const HUB_LEGACY = 'index.docker.io';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

function invalid(s: string, why: string): TsbuildError {
  return new TsbuildError('REFERENCE', `invalid reference ${JSON.stringify(s)}: ${why}`);
}

class ParsedReference implements Reference {
  readonly tag?: string;
  readonly digest?: Digest;
  constructor(
    readonly registry: string,
    readonly repository: string,
    tag: string | undefined,
    digest: Digest | undefined,
  ) {
    if (tag !== undefined) this.tag = tag;
    if (digest !== undefined) this.digest = digest;
  }

  #suffix(): string {
    return `${this.tag === undefined ? '' : `:${this.tag}`}${this.digest === undefined ? '' : `@${this.digest}`}`;
  }

  toString(): string {
    return `${this.registry}/${this.repository}${this.#suffix()}`;
  }

  familiar(): string {
    if (this.registry !== DOCKER_HUB) return this.toString();
    const repo = this.repository.startsWith('library/') ? this.repository.slice('library/'.length) : this.repository;
    return `${repo}${this.#suffix()}`;
  }
}

/**
 * `NAME[:TAG][@DIGEST]` split, the digest after the `@` at `at` (the caller's choice of first or
 * last), the tag after a `:` past the last `/`. Only split: each caller validates the parts.
 */
export function splitTagDigest(s: string, at: number): { rest: string; tag?: string; digest?: string } {
  const rest = at >= 0 ? s.slice(0, at) : s;
  const colon = rest.lastIndexOf(':');
  const tagged = colon > rest.lastIndexOf('/');
  return {
    rest: tagged ? rest.slice(0, colon) : rest,
    ...(tagged ? { tag: rest.slice(colon + 1) } : {}),
    ...(at >= 0 ? { digest: s.slice(at + 1) } : {}),
  };
}

export function parseReference(s: string): Reference {
  if (s === '') throw invalid(s, 'empty reference');
  const split = splitTagDigest(s, s.indexOf('@'));
  const { rest, tag: splitTag } = split;
  if (split.digest !== undefined && !isDigest(split.digest)) throw invalid(s, 'digest must be sha256:<64 lowercase hex>');
  const digest = split.digest;
  let tag = splitTag;
  if (tag !== undefined && !TAG_RE.test(tag)) throw invalid(s, `bad tag ${JSON.stringify(tag)}`);
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))) {
    if (!DOMAIN_RE.test(first)) throw invalid(s, `bad registry host ${JSON.stringify(first)}`);
    registry = first === HUB_LEGACY ? DOCKER_HUB : first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => p === '')) throw invalid(s, 'empty path component');
  for (const p of parts) {
    if (/[A-Z]/.test(p)) throw invalid(s, 'repository name must be lowercase');
    if (!PATH_COMPONENT_RE.test(p)) throw invalid(s, `bad path component ${JSON.stringify(p)}`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME) throw invalid(s, `repository name longer than ${MAX_NAME} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return new ParsedReference(registry, repository, tag, digest);
}

/** The same repository at another tag or digest (used to address manifests by digest). */
export function withDigest(ref: Reference, digest: Digest): Reference {
  return new ParsedReference(ref.registry, ref.repository, undefined, digest);
}

export function withTag(ref: Reference, tag: string): Reference {
  if (!TAG_RE.test(tag)) throw invalid(tag, 'bad tag');
  return new ParsedReference(ref.registry, ref.repository, tag, undefined);
}

/** The host the API actually lives on: Docker Hub's API is not on docker.io itself. */
export function registryHost(ref: Pick<Reference, 'registry'> | string): string {
  const name = typeof ref === 'string' ? ref : ref.registry;
  return name === DOCKER_HUB || name === HUB_LEGACY ? 'registry-1.docker.io' : name;
}

/** Strip the port: "127.0.0.1:5000" → "127.0.0.1", "[::1]:5000" → "::1". */
export function hostname(host: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (v6?.[1] !== undefined) return v6[1];
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/** Loopback registries may be spoken to over plain HTTP, as docker allows. */
export function isLocalRegistry(host: string): boolean {
  const name = hostname(host).toLowerCase();
  return name === 'localhost' || name === '::1' || /^127(?:\.\d{1,3}){3}$/.test(name);
}
