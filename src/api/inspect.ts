/**
 * docker's views of a local image: `docker image inspect`'s JSON shape, `docker history` entries and
 * `docker images` rows, as plain data (the CLI formats them; library users get them typed).
 */
import { MediaType, type ContainerConfig, type Descriptor, type Digest, type Manifest } from '../image/index.js';
import type { Store } from '../store/index.js';
import { loadImage, resolveLocal, safeRef, tagsOf, type LocalImage } from './local.js';

export interface ImageInspect {
  Id: Digest;
  RepoTags: string[];
  RepoDigests: string[];
  Parent: string;
  Comment: string;
  Created: string;
  DockerVersion: string;
  Author: string;
  Config: ContainerConfig;
  Architecture: string;
  Variant?: string;
  Os: string;
  Size: number;
  RootFS: { Type: string; Layers: Digest[] };
  Metadata: { LastTagTime: string };
  Descriptor: Descriptor;
  Manifest: Manifest;
}

export interface HistoryEntry {
  /** The image ID on the newest entry, `<missing>` on the others (as docker prints them). */
  id: string;
  created: string | undefined;
  createdBy: string;
  size: number;
  comment: string;
  emptyLayer: boolean;
}

export interface ImageSummary {
  name: string;
  repository: string;
  tag: string;
  id: Digest;
  manifestDigest: Digest;
  created: string | undefined;
  size: number;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

export async function inspectImage(store: Store, ref: string): Promise<ImageInspect> {
  const local = await resolveLocal(store, ref);
  const { manifest, config } = await loadImage(store, local.digest);
  const names = (await tagsOf(store, local.digest)).map((n) => safeRef(n));
  const repoTags = names.map((r) => r?.familiar()).filter((n): n is string => n !== undefined && !n.includes('@'));
  const repos = [...new Set(names.map((r) => (r === undefined ? undefined : repoName(r.familiar()))).filter((n): n is string => n !== undefined))];
  return {
    Id: manifest.config.digest,
    RepoTags: repoTags,
    RepoDigests: repos.map((r) => `${r}@${local.digest}`),
    Parent: '',
    Comment: config.history?.at(-1)?.comment ?? '',
    Created: rfc3339Nano(config.created ?? ZERO_TIME),
    DockerVersion: '',
    Author: config.author ?? '',
    Config: config.config ?? {},
    Architecture: config.architecture,
    ...(config.variant !== undefined ? { Variant: config.variant } : {}),
    Os: config.os,
    Size: manifest.layers.reduce((n, l) => n + l.size, 0),
    RootFS: { Type: config.rootfs.type, Layers: [...config.rootfs.diff_ids] },
    Metadata: { LastTagTime: ZERO_TIME },
    Descriptor: await manifestDescriptor(store, local, manifest),
    Manifest: manifest,
  };
}

/** Newest first, layer sizes matched to the non-empty history entries, as moby's ImageHistory. */
export async function imageHistory(store: Store, ref: string): Promise<HistoryEntry[]> {
  const local = await resolveLocal(store, ref);
  const { manifest, config } = await loadImage(store, local.digest);
  let layer = 0;
  const entries = (config.history ?? []).map((h) => {
    const empty = h.empty_layer === true;
    const size = empty ? 0 : (manifest.layers[layer++]?.size ?? 0);
    return { id: '<missing>', created: h.created, createdBy: h.created_by ?? '', size, comment: h.comment ?? '', emptyLayer: empty };
  });
  entries.reverse();
  if (entries[0] !== undefined) entries[0].id = manifest.config.digest;
  return entries;
}

/** One row per tag, newest image first (docker's order). */
export async function listImages(store: Store): Promise<ImageSummary[]> {
  const rows: ImageSummary[] = [];
  for (const t of await store.tags.list()) {
    const { manifest, config } = await loadImage(store, t.descriptor.digest);
    const ref = safeRef(t.name);
    const familiar = ref?.familiar() ?? t.name;
    rows.push({
      name: t.name,
      repository: ref !== undefined ? repoName(familiar) : t.name,
      tag: ref?.tag ?? '<none>',
      id: manifest.config.digest,
      manifestDigest: t.descriptor.digest,
      created: config.created,
      size: manifest.layers.reduce((n, l) => n + l.size, 0),
    });
  }
  return rows.sort((a, b) => Date.parse(b.created ?? '0') - Date.parse(a.created ?? '0') || a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag));
}

/** Go's RFC3339Nano: fractional seconds without trailing zeros ("…:56.000Z" → "…:56Z"). */
export function rfc3339Nano(iso: string): string {
  return iso.replace(/\.(\d*?)0*(?=Z|[+-]\d\d:\d\d$)/, (_m, frac: string) => (frac === '' ? '' : `.${frac}`));
}

async function manifestDescriptor(store: Store, local: LocalImage, manifest: Manifest): Promise<Descriptor> {
  const d = await store.tags.get(local.name);
  return { mediaType: d?.mediaType ?? manifest.mediaType ?? MediaType.OciManifest, digest: local.digest, size: d?.size ?? 0 };
}

/** "busybox:latest" → "busybox", "localhost:5000/app:v1" → "localhost:5000/app" (a registry port is not a tag). */
function repoName(familiar: string): string {
  const noDigest = familiar.replace(/@.*$/, '');
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
