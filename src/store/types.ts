import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';

export interface Signal {
  signal?: AbortSignal;
}

export interface PutResult {
  digest: Digest;
  size: number;
  /** This put made the blob (it was not in the store): what a failed import takes away again. */
  created: boolean;
}

export interface BlobStore {
  has(digest: Digest): Promise<boolean>;
  /** `<root>/blobs/sha256/<hex>` (may not exist). */
  path(digest: Digest): string;
  size(digest: Digest): Promise<number | undefined>;
  /**
   * Streams `source` to tmp ('wx'), hashing while writing, then renames into place. A digest or
   * size differing from `expected`/`expectedSize` throws TsbuildError('STORE') and stores nothing.
   * Content that already exists is success (its mtime is refreshed so a concurrent prune spares it).
   */
  put(
    source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
    options?: {
      expected?: Digest;
      expectedSize?: number;
      signal?: AbortSignal;
      /** Roughly how big the blob will be: large ones are hashed and written on a worker thread. */
      sizeHint?: number;
      /** The caller never reuses a chunk after yielding it, so chunks may move to that thread without a copy. */
      handOver?: boolean;
    },
  ): Promise<PutResult>;
  putBytes(data: Uint8Array | string, options?: { expected?: Digest; signal?: AbortSignal }): Promise<PutResult>;
  /** Verified read: the stream errors (TsbuildError 'STORE') at its end if the bytes do not hash to `digest`. */
  open(digest: Digest, options?: Signal): Promise<NodeJS.ReadableStream>;
  /** Verified whole read for small blobs (manifests, configs); default maxSize 16 MiB. */
  readBytes(digest: Digest, options?: { signal?: AbortSignal; maxSize?: number }): Promise<Buffer>;
  readJson<T>(digest: Digest, options?: { signal?: AbortSignal; maxSize?: number }): Promise<T>;
  delete(digest: Digest): Promise<void>;
  list(): AsyncIterable<Digest>;
}

export interface Tags {
  list(): Promise<{ name: string; descriptor: Descriptor }[]>;
  get(name: string): Promise<Descriptor | undefined>;
  set(name: string, descriptor: Descriptor, options?: Signal): Promise<void>;
  remove(name: string, options?: Signal): Promise<boolean>;
}

export interface Snapshots {
  /** Absolute snapshot dir for a diffID; stable once `has()` is true (see README for naming). */
  path(diffId: Digest): string;
  has(diffId: Digest): Promise<boolean>;
  ensure(diffId: Digest, fill: (dir: string, signal?: AbortSignal) => Promise<void>, options?: Signal): Promise<string>;
  adopt(diffId: Digest, dir: string, options?: Signal): Promise<string>;
  remove(diffId: Digest, options?: Signal): Promise<void>;
  list(): Promise<Digest[]>;
}

export interface CacheEntry {
  /** Blob digests this entry keeps alive through GC. */
  refs: Digest[];
  /** Opaque builder data (JSON). */
  data: unknown;
  created: string;
}

export interface ContentMemo {
  get(key: string): string | undefined;
  set(key: string, digest: string): void;
  load(options?: Signal): Promise<void>;
  flush(options?: Signal): Promise<void>;
}

export interface CacheIndex {
  get(key: string): Promise<CacheEntry | undefined>;
  put(key: string, entry: CacheEntry, options?: Signal): Promise<void>;
  delete(key: string): Promise<void>;
  list(): Promise<{ key: string; entry: CacheEntry }[]>;
  memo: ContentMemo;
  /** The memo of one build context root (same object for the same root within a process). */
  memoFor(scope: string): ContentMemo;
}

export type CompressionFormat = 'gzip' | 'zstd';

/** diffID → compressed blob descriptor, so a layer is compressed once per format. */
export interface CompressionCache {
  get(diffId: Digest, format: CompressionFormat): Promise<Descriptor | undefined>;
  set(diffId: Digest, format: CompressionFormat, descriptor: Descriptor): Promise<void>;
  delete(diffId: Digest, format: CompressionFormat): Promise<void>;
  list(): Promise<{ diffId: Digest; format: CompressionFormat; descriptor: Descriptor }[]>;
}

export interface Store {
  readonly root: string;
  /**
   * This process's staging dir, `<root>/tmp/proc-<pid>-<hex>`: same filesystem as everything else,
   * for write-then-rename. A crashed process's dir is swept on the next open.
   */
  readonly tmpDir: string;
  readonly blobs: BlobStore;
  readonly tags: Tags;
  readonly snapshots: Snapshots;
  readonly cache: CacheIndex;
  readonly compressed: CompressionCache;
  /** Cross-process exclusive lock (flock on `<root>/lock`); re-entrant within one async context. */
  withLock<T>(fn: () => Promise<T>, options?: Signal): Promise<T>;
  /**
   * Runs `fn` holding a shared GC lease (flock on `<root>/gc.lock`): prune waits until no lease is
   * held, so nothing a running build or pull has resolved but not yet tagged is collected under it.
   * Re-entrant; prune called inside a lease throws instead of deadlocking.
   */
  withLease<T>(fn: () => Promise<T>, options?: Signal): Promise<T>;
}
