import type { Dispatcher } from 'undici';
import { isDigest, sha256Digest, type Digest } from '../image/digest.js';
import { MediaType, isIndexMediaType, isManifestMediaType } from '../image/mediatypes.js';
import type { Descriptor, Index, Manifest } from '../image/types.js';
import type { Reference } from '../image/reference.js';
import { RegistryClient, describeNetworkError, pullScope, type TimeoutOptions } from './client.js';
import { RegistryError } from './errors.js';
import { MAX_MANIFEST_BYTES, type PlatformSpec } from './types.js';

/** What docker sends: OCI and Docker schema2 manifests and their multi-platform lists. */
export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

export interface ResolvedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

/** Read a body, refusing more than `max` bytes (checked against Content-Length and while reading). */
export async function readLimited(res: Dispatcher.ResponseData, max: number, what: string, timeouts?: Required<TimeoutOptions>): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    res.body.destroy();
    throw new RegistryError(`${what}: too large (${declared} bytes, limit ${max})`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      size += b.length;
      // Stop at the first byte past the limit: an endless body is never read to its end.
      if (size > max) throw new RegistryError(`${what}: too large (more than ${max} bytes)`);
      chunks.push(b);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError(`${what}: reading the response failed: ${describeNetworkError(err, timeouts)}`, { cause: err, temporary: true });
  } finally {
    res.body.destroy();
  }
  return Buffer.concat(chunks);
}

function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** What the caller already knows about the manifest (from an index's descriptor). */
export interface ExpectedManifest {
  mediaType?: string;
  size?: number;
}

/**
 * The manifest's media type, refusing documents that could be read as both an index and an image
 * manifest or whose declared types disagree (CVE-2021-41190 / GHSA-mc8v-mgrf-8f4m): the body's
 * `mediaType`, the Content-Type header and the referring descriptor must all say the same.
 */
export function manifestMediaType(bytes: Buffer, contentType: string | undefined, expected: ExpectedManifest, what: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError(`${what}: not valid JSON`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new RegistryError(`${what}: not a JSON object`);
  const body = doc as Record<string, unknown>;
  const isIndexShape = 'manifests' in body;
  const isImageShape = 'layers' in body || 'config' in body;
  if (isIndexShape && isImageShape) {
    throw new RegistryError(`${what}: ambiguous manifest with both "manifests" and "layers"/"config" (refused, CVE-2021-41190)`);
  }
  if (body['mediaType'] !== undefined && typeof body['mediaType'] !== 'string') throw new RegistryError(`${what}: mediaType is not a string`);
  const declared = body['mediaType'];
  const known = (t: string | undefined): t is string => isIndexMediaType(t) || isManifestMediaType(t);
  // Generic Content-Types (application/json, octet-stream) say nothing; a manifest type must agree.
  const header = known(contentType) ? contentType : undefined;
  const wanted = known(expected.mediaType) ? expected.mediaType : undefined;
  if (declared !== undefined && header !== undefined && declared !== header) {
    throw new RegistryError(`${what}: body says mediaType ${declared} but Content-Type is ${header} (refused, CVE-2021-41190)`);
  }
  const mediaType = declared ?? header ?? wanted ?? (isIndexShape ? MediaType.OciIndex : isImageShape ? MediaType.OciManifest : undefined);
  if (!known(mediaType)) throw new RegistryError(`${what}: unsupported media type ${JSON.stringify(mediaType ?? 'none')}`);
  if (wanted !== undefined && mediaType !== wanted) {
    throw new RegistryError(`${what}: is ${mediaType} but the index descriptor says ${wanted} (refused, CVE-2021-41190)`);
  }
  if (isIndexMediaType(mediaType) ? isImageShape || !Array.isArray(body['manifests']) : isIndexShape || !Array.isArray(body['layers'])) {
    throw new RegistryError(`${what}: content does not match its media type ${mediaType} (refused, CVE-2021-41190)`);
  }
  return mediaType;
}

/** GET a manifest (by tag or digest) from one registry host, verified when addressed by digest. */
export async function fetchManifest(
  client: RegistryClient,
  host: string,
  repository: string,
  reference: string,
  options: { signal?: AbortSignal; expected?: ExpectedManifest } = {},
): Promise<ResolvedManifest> {
  const what = `manifest ${host}/${repository}:${reference}`.replace(/:sha256:/, '@sha256:');
  const res = await client.send({
    host,
    method: 'GET',
    path: `/v2/${repository}/manifests/${reference}`,
    scopes: [pullScope(repository)],
    headers: { accept: MANIFEST_ACCEPT },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (res.statusCode !== 200) return RegistryClient.fail(what, res);
  const size = options.expected?.size;
  const bytes = await readLimited(res, Math.min(size ?? MAX_MANIFEST_BYTES, MAX_MANIFEST_BYTES), what, client.timeouts);
  if (size !== undefined && bytes.length !== size) throw new RegistryError(`${what}: size mismatch (${bytes.length} bytes, descriptor says ${size})`);
  const digest = sha256Digest(bytes);
  if (isDigest(reference) && digest !== reference) {
    throw new RegistryError(`${what}: digest mismatch (got ${digest})`);
  }
  const header = headerString(res.headers['docker-content-digest']);
  if (!isDigest(reference) && header !== undefined && isDigest(header) && header !== digest) {
    throw new RegistryError(`${what}: digest mismatch (registry says ${header}, content is ${digest})`);
  }
  const contentType = headerString(res.headers['content-type'])?.split(';')[0]?.trim();
  const mediaType = manifestMediaType(bytes, contentType, options.expected ?? {}, what);
  return { digest, mediaType, bytes };
}

/**
 * Resolve a reference to its top-level manifest (index or image manifest), trying pull mirrors
 * first and the origin last, as the docker daemon does.
 */
export async function resolveManifest(client: RegistryClient, ref: Reference, options: { signal?: AbortSignal } = {}): Promise<ResolvedManifest & { host: string }> {
  const target = ref.digest ?? ref.tag ?? 'latest';
  const hosts = await client.pullHosts(ref.registry, ref.digest !== undefined);
  let lastError: unknown;
  for (const host of hosts) {
    try {
      return { ...(await fetchManifest(client, host, ref.repository, target, options)), host };
    } catch (err) {
      if (options.signal?.aborted) throw err;
      lastError = err;
    }
  }
  throw lastError;
}

function platformMatches(p: Descriptor['platform'], want: PlatformSpec): boolean {
  if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
  if (want.variant === undefined) return true;
  // arm64's variant is optional in practice ("v8" implied).
  return p.variant === want.variant || (p.variant === undefined && want.architecture === 'arm64' && want.variant === 'v8');
}

/** Pick the manifest for a platform out of an index; attestation manifests are never chosen. */
export function selectPlatform(index: Index, want: PlatformSpec, what: string): Descriptor {
  const candidates = index.manifests.filter((m) => isManifestMediaType(m.mediaType) && platformMatches(m.platform, want));
  const exact = candidates.find((m) => want.variant === undefined || m.platform?.variant === want.variant) ?? candidates[0];
  if (!exact) {
    const have = index.manifests
      .map((m) => m.platform)
      .filter((p): p is NonNullable<Descriptor['platform']> => p !== undefined && p.os !== 'unknown')
      .map((p) => `${p.os}/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`);
    throw new RegistryError(
      `${what}: no manifest for ${want.os}/${want.architecture}${want.variant === undefined ? '' : `/${want.variant}`} (available: ${have.join(', ') || 'none'})`,
    );
  }
  return exact;
}

export function parseManifest(bytes: Buffer, what: string): Manifest {
  const m = JSON.parse(bytes.toString('utf8')) as Partial<Manifest>;
  if (m.schemaVersion !== 2 || !m.config || !Array.isArray(m.layers)) {
    throw new RegistryError(`${what}: malformed image manifest`);
  }
  return m as Manifest;
}
