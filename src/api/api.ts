/**
 * The library API: typed, promise-returning wrappers over builder, registry and store with no CLI
 * code. Every call takes a store (`root` or an open `store`), an optional AbortSignal and, where
 * there is progress, an event callback.
 */
import { build as runBuild, type BuildRequest, type BuildResult } from '../builder/execute.js';
import { parsePlatform } from '../builder/plan-platform.js';
import type { BuildEvent } from '../builder/events.js';
import type { Digest, Platform } from '../image/index.js';
import { parseReference } from '../image/reference.js';
import { DockerConfigAuth, RegistryClient, type AuthProvider, type TransferEvent } from '../registry/index.js';
import { defaultStoreRoot, openStore, type Store } from '../store/index.js';
import { AbortError, isTsbuildError } from '../util/errors.js';
import { imageHistory, inspectImage, listImages, type HistoryEntry, type ImageInspect, type ImageSummary } from './inspect.js';
import { resolveLocal } from './local.js';
import { pullIntoStore } from './pull.js';
import { pushLocalImage } from './push.js';

export interface StoreOptions {
  /** Store root directory (default `$TSBUILD_ROOT`, else `/var/lib/tsbuild` as root or `$XDG_DATA_HOME/tsbuild`). */
  root?: string;
  /** An already open store; wins over `root`. */
  store?: Store;
  signal?: AbortSignal;
}

export interface RegistryOptions {
  /** Hosts spoken to over plain HTTP / unverified TLS, e.g. `['127.0.0.1:5000']`. */
  insecureRegistries?: string[];
  /** Credentials; default: docker's config.json and credential helpers. */
  auth?: AuthProvider;
}

export type BuildOptions = BuildRequest & StoreOptions & RegistryOptions & { onEvent?: (event: BuildEvent) => void };
export type PullOptions = StoreOptions & RegistryOptions & { platform?: Platform | string; onEvent?: (event: TransferEvent) => void };
export type PushOptions = StoreOptions & RegistryOptions & { destination?: string; onEvent?: (event: TransferEvent) => void };

export async function openStoreFor(options: StoreOptions): Promise<Store> {
  if (options.store !== undefined) return options.store;
  return openStore(options.root ?? process.env.TSBUILD_ROOT ?? defaultStoreRoot(), options.signal !== undefined ? { signal: options.signal } : {});
}

/** Failures after the caller aborted are reported as `AbortError` (code ABORTED), whatever unwound. */
async function abortable<T>(signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  try {
    signal?.throwIfAborted();
    return await work();
  } catch (err) {
    if (signal?.aborted === true && !(isTsbuildError(err) && err.code === 'ABORTED')) throw new AbortError(signal.reason);
    throw err;
  }
}

function client(options: RegistryOptions): RegistryClient {
  return new RegistryClient({ auth: options.auth ?? new DockerConfigAuth(), insecureRegistries: options.insecureRegistries ?? [] });
}

/** Builds a Dockerfile (`contextDir`, optional `dockerfile`) into the store and tags it. */
export async function build(options: BuildOptions): Promise<BuildResult> {
  return abortable(options.signal, () => buildImage(options));
}

async function buildImage(options: BuildOptions): Promise<BuildResult> {
  const { root: _root, store: _store, signal, onEvent, insecureRegistries: _i, auth: _a, ...request } = options;
  const store = await openStoreFor(options);
  // Tags are stored under their normalised names ("app:v1" → "docker.io/library/app:v1"), as the CLI does.
  if (request.tags !== undefined) request.tags = request.tags.map((t) => parseReference(t).toString());
  return runBuild(request, { store, registry: client(options) }, { ...(signal !== undefined ? { signal } : {}), ...(onEvent !== undefined ? { onEvent } : {}) });
}

/** Pulls an image for one platform (default linux/amd64), unpacks its layers and tags it in the store under its normalised name. */
export async function pull(reference: string, options: PullOptions = {}): Promise<{ name: string; manifestDigest: Digest; configDigest: Digest }> {
  return abortable(options.signal, () => pullImageInto(reference, options));
}

async function pullImageInto(reference: string, options: PullOptions): Promise<{ name: string; manifestDigest: Digest; configDigest: Digest }> {
  const store = await openStoreFor(options);
  const ref = parseReference(reference);
  const platform = typeof options.platform === 'string' ? parsePlatform(options.platform) : (options.platform ?? { os: 'linux', architecture: 'amd64' });
  const r = await pullIntoStore(store, client(options), ref, {
    platform,
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onEvent !== undefined ? { onProgress: options.onEvent } : {}),
  });
  return { name: ref.toString(), manifestDigest: r.manifestDigest, configDigest: r.configDigest };
}

/** Pushes a local image (name or ID) to `destination` (default: its own name); layers are gzipped on the way. */
export async function push(source: string, options: PushOptions = {}): Promise<{ reference: string; digest: Digest; size: number }> {
  return abortable(options.signal, () => pushLocal(source, options));
}

async function pushLocal(source: string, options: PushOptions): Promise<{ reference: string; digest: Digest; size: number }> {
  const store = await openStoreFor(options);
  const local = await resolveLocal(store, source);
  return pushLocalImage(store, client(options), source, options.destination ?? local.name, {
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onEvent !== undefined ? { onProgress: options.onEvent } : {}),
  });
}

/** docker's `image inspect` shape (Id, RepoTags, Config, RootFS, …) plus the manifest. */
export async function inspect(reference: string, options: StoreOptions = {}): Promise<ImageInspect> {
  return inspectImage(await openStoreFor(options), reference);
}

/** History entries, newest first, with layer sizes (docker history). */
export async function history(reference: string, options: StoreOptions = {}): Promise<HistoryEntry[]> {
  return imageHistory(await openStoreFor(options), reference);
}

/** The store's tagged images, newest first (docker images). */
export async function images(options: StoreOptions = {}): Promise<ImageSummary[]> {
  return listImages(await openStoreFor(options));
}
