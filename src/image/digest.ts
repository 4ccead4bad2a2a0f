import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TsbuildError } from '../util/errors.js';

/** `sha256:<64 lowercase hex>` — the only digest form tsbuild accepts or writes. */
export type Digest = string & { readonly __brand: 'Digest' };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: string): value is Digest {
  return DIGEST_RE.test(value);
}

export function parseDigest(value: string): Digest {
  if (!isDigest(value)) {
    throw new TsbuildError('IMAGE', `invalid digest ${JSON.stringify(value)}: only sha256:<64 hex> is supported`);
  }
  return value;
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

export function sha256Digest(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

export function digestFromHash(hash: Hash): Digest {
  return `sha256:${hash.digest('hex')}` as Digest;
}

/**
 * A pass-through stream that hashes and counts what flows through it, so a digest is computed
 * in the same pass that writes or uploads the bytes (never a second read).
 */
export class DigestingStream extends Transform {
  #hash = createHash('sha256');
  #size = 0;
  #digest: Digest | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.#digest = digestFromHash(this.#hash);
    cb();
  }

  get size(): number {
    return this.#size;
  }

  /** Available once the stream has ended. */
  get digest(): Digest {
    if (this.#digest === undefined) throw new TsbuildError('INTERNAL', 'digest read before stream end');
    return this.#digest;
  }
}
