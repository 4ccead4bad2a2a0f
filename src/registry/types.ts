import type { Digest } from '../image/digest.js';

/**
 * The two views of the local store the registry client needs. They are structural so this module
 * never imports src/store; the store implements exactly these method names.
 */
export interface BlobSink {
  has(d: Digest): Promise<boolean>;
  /** Bytes of a stored blob, undefined when absent. */
  size(d: Digest): Promise<number | undefined>;
  /**
   * Must verify `expected` while streaming and store nothing when it does not match, failing with
   * a DigestMismatchError: a download relies on it and does not hash the bytes a second time.
   */
  put(
    source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
    o?: { expected?: Digest; expectedSize?: number; signal?: AbortSignal },
  ): Promise<{ digest: Digest; size: number }>;
  putBytes(data: Uint8Array | string, o?: { expected?: Digest; signal?: AbortSignal }): Promise<{ digest: Digest; size: number }>;
}

export interface BlobSource {
  open(d: Digest, o?: { signal?: AbortSignal }): Promise<NodeJS.ReadableStream>;
  size(d: Digest): Promise<number | undefined>;
  readBytes(d: Digest, o?: { signal?: AbortSignal }): Promise<Buffer>;
}

export interface TransferEvent {
  kind: 'blob';
  digest: Digest;
  phase: 'start' | 'progress' | 'done' | 'exists' | 'mounted';
  bytes: number;
  total: number;
  /** Image layers finished so far (done, already there or mounted) and in all, for pull/push events. */
  layersDone?: number;
  layers?: number;
}

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export interface RetryOptions {
  /** Attempts per request including the first (default 5). */
  attempts?: number;
  /** First backoff delay in ms, doubled each time (default 200). */
  baseDelayMs?: number;
  /** Cap on one backoff delay and on an honoured Retry-After (default 10 000). */
  maxDelayMs?: number;
}

/** Registry credentials as docker stores them. */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (docker config `identitytoken`). */
  identityToken?: string;
  /** A bearer token to send as is (docker config `registrytoken`). */
  registryToken?: string;
}

export interface AuthProvider {
  /** Credentials for a registry host (as in a reference, e.g. "docker.io", "127.0.0.1:5000"). */
  credentials(host: string, o?: { signal?: AbortSignal }): Promise<Credentials | undefined>;
}

/** At most this much manifest is ever read, as docker and containerd do. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
