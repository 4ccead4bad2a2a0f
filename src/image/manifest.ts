/**
 * Read/write helpers for manifests, configs and indexes. OCI media types by default; Docker
 * schema2 on request. Parsing checks shape (not content digests: that needs a blob source, see
 * `validateImage` in layers/).
 */
import { TsbuildError } from '../util/errors.js';
import { byKey } from '../util/order.js';
import { isDigest, sha256Digest } from './digest.js';
import { isIndexMediaType, isManifestMediaType, layerCompression, MediaType } from './mediatypes.js';
import type { ContainerConfig, Descriptor, ImageConfig, Index, Manifest } from './types.js';

export type ManifestFlavor = 'oci' | 'docker';

/** Serialised JSON plus its descriptor: the bytes are what gets hashed, stored and pushed. */
export interface EncodedBlob {
  bytes: Buffer;
  descriptor: Descriptor;
}

export function encodeJson(value: unknown, mediaType: string): EncodedBlob {
  const bytes = Buffer.from(JSON.stringify(value));
  return { bytes, descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length } };
}

/** Container config fields in the order Go's image-spec structs declare them (docker's extras last). */
const CONFIG_FIELDS = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'] as const;

/**
 * The container config as BuildKit's exporter writes it (Go's encoding/json over the image-spec
 * structs): fields in declaration order, `omitempty` fields dropped when empty (so `CMD []` and a
 * base image's `"WorkingDir": ""` leave no trace), map keys sorted. Unknown fields are kept, last.
 */
export function goContainerConfig(config: ContainerConfig): ContainerConfig {
  const out: Record<string, unknown> = {};
  const source = config as Record<string, unknown>;
  const keys = [...CONFIG_FIELDS, ...Object.keys(source).filter((k) => !(CONFIG_FIELDS as readonly string[]).includes(k))];
  for (const key of keys) {
    const value = source[key];
    if (value === undefined || value === null || value === '' || value === false) continue;
    if (Array.isArray(value)) {
      if (value.length > 0) out[key] = value;
    } else if (typeof value === 'object' && key !== 'Healthcheck') {
      const entries = Object.entries(value as Record<string, unknown>).sort(byKey);
      if (entries.length > 0) out[key] = Object.fromEntries(entries);
    } else out[key] = value;
  }
  return out;
}

export function encodeConfig(config: ImageConfig, flavor: ManifestFlavor = 'oci'): EncodedBlob {
  return encodeJson(config, flavor === 'oci' ? MediaType.OciConfig : MediaType.DockerConfig);
}

export function buildManifest(config: Descriptor, layers: Descriptor[], options: { flavor?: ManifestFlavor; annotations?: Record<string, string> } = {}): Manifest {
  const docker = options.flavor === 'docker';
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    config,
    layers,
  };
  if (options.annotations && Object.keys(options.annotations).length > 0) manifest.annotations = options.annotations;
  return manifest;
}

export function encodeManifest(manifest: Manifest): EncodedBlob {
  return encodeJson(manifest, manifest.mediaType ?? MediaType.OciManifest);
}

export function encodeIndex(index: Index): EncodedBlob {
  return encodeJson(index, index.mediaType ?? MediaType.OciIndex);
}

function parseObject(bytes: Uint8Array | string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new TsbuildError('IMAGE', `${what} is not valid JSON`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TsbuildError('IMAGE', `${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor> | null;
  if (typeof o !== 'object' || o === null) throw new TsbuildError('IMAGE', `${where}: not a descriptor`);
  if (typeof o.mediaType !== 'string') throw new TsbuildError('IMAGE', `${where}: missing mediaType`);
  if (typeof o.digest !== 'string' || !isDigest(o.digest)) throw new TsbuildError('IMAGE', `${where}: bad digest ${String(o.digest)}`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw new TsbuildError('IMAGE', `${where}: bad size`);
  return o as Descriptor;
}

export function parseManifest(bytes: Uint8Array | string): Manifest {
  const o = parseObject(bytes, 'manifest');
  if (o.schemaVersion !== 2) throw new TsbuildError('IMAGE', `manifest schemaVersion ${String(o.schemaVersion)} is not 2`);
  if (o.mediaType !== undefined && !isManifestMediaType(o.mediaType as string)) {
    throw new TsbuildError('IMAGE', `not an image manifest: mediaType ${JSON.stringify(o.mediaType)}`);
  }
  checkDescriptor(o.config, 'manifest config');
  if (!Array.isArray(o.layers)) throw new TsbuildError('IMAGE', 'manifest layers is not an array');
  o.layers.forEach((l, i) => checkDescriptor(l, `manifest layer ${i}`));
  return o as unknown as Manifest;
}

export function parseIndex(bytes: Uint8Array | string): Index {
  const o = parseObject(bytes, 'index');
  if (o.schemaVersion !== 2) throw new TsbuildError('IMAGE', `index schemaVersion ${String(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.manifests)) throw new TsbuildError('IMAGE', 'index manifests is not an array');
  o.manifests.forEach((m, i) => checkDescriptor(m, `index entry ${i}`));
  return o as unknown as Index;
}

export function parseConfig(bytes: Uint8Array | string): ImageConfig {
  const o = parseObject(bytes, 'image config');
  const rootfs = o.rootfs as { type?: unknown; diff_ids?: unknown } | undefined;
  if (rootfs?.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw new TsbuildError('IMAGE', 'image config has no rootfs.diff_ids');
  for (const d of rootfs.diff_ids) if (typeof d !== 'string' || !isDigest(d)) throw new TsbuildError('IMAGE', `bad diff_id ${String(d)}`);
  return o as unknown as ImageConfig;
}

/** Is this JSON document an index (vs a manifest)? Uses mediaType, else the shape. */
export function looksLikeIndex(doc: { mediaType?: string; manifests?: unknown }): boolean {
  return isIndexMediaType(doc.mediaType) || (doc.mediaType === undefined && Array.isArray(doc.manifests));
}

const CONFIG_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

/** Structural rules that need no blob access (go-containerregistry validate, minus hashing). */
export function checkImageShape(manifest: Manifest, config: ImageConfig): string[] {
  const problems: string[] = [];
  if (!CONFIG_TYPES.has(manifest.config.mediaType)) problems.push(`config media type ${manifest.config.mediaType} is not an image config`);
  manifest.layers.forEach((l, i) => {
    if (layerCompression(l.mediaType) === undefined) problems.push(`layer ${i} has unknown media type ${l.mediaType}`);
  });
  const docker = manifest.mediaType === MediaType.DockerManifest;
  const mixed = manifest.layers.some((l) => l.mediaType.startsWith(docker ? 'application/vnd.oci.' : 'application/vnd.docker.'));
  if (mixed) problems.push(`${docker ? 'Docker' : 'OCI'} manifest mixes in ${docker ? 'OCI' : 'Docker'} layer media types`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    problems.push(`config has ${config.rootfs.diff_ids.length} diff_ids but manifest has ${manifest.layers.length} layers`);
  }
  if (!config.os || !config.architecture) problems.push('config lacks os/architecture');
  const nonEmpty = (config.history ?? []).filter((h) => h.empty_layer !== true).length;
  if (config.history !== undefined && nonEmpty !== manifest.layers.length) {
    problems.push(`config history has ${nonEmpty} non-empty entries but manifest has ${manifest.layers.length} layers`);
  }
  return problems;
}
