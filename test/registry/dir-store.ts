import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../../src/image/digest.js';
import type { BlobSink, BlobSource } from '../../src/registry/types.js';
import { DigestMismatchError } from '../../src/util/errors.js';

/**
 * A tiny directory-backed blob store for tests: `<dir>/<hex>` files, written to a temp name and
 * renamed only after the digest checks out.
 */
export class DirStore implements BlobSink, BlobSource {
  constructor(readonly dir: string) {}

  #path(d: Digest): string {
    return join(this.dir, d.slice('sha256:'.length));
  }

  async has(d: Digest): Promise<boolean> {
    return (await this.size(d)) !== undefined;
  }

  async size(d: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.#path(d))).size;
    } catch {
      return undefined;
    }
  }

  async open(d: Digest): Promise<NodeJS.ReadableStream> {
    await stat(this.#path(d));
    return createReadStream(this.#path(d));
  }

  readBytes(d: Digest): Promise<Buffer> {
    return readFile(this.#path(d));
  }

  async list(): Promise<string[]> {
    await mkdir(this.dir, { recursive: true });
    return (await readdir(this.dir)).filter((n) => !n.startsWith('.tmp')).sort();
  }

  async put(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream, o: { expected?: Digest; expectedSize?: number } = {}): Promise<{ digest: Digest; size: number }> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        Readable.from(source as AsyncIterable<Uint8Array>),
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            hash.update(c);
            size += c.length;
            yield c;
          }
        },
        createWriteStream(tmp),
      );
      const digest = `sha256:${hash.digest('hex')}` as Digest;
      if (o.expected !== undefined && digest !== o.expected) throw new DigestMismatchError(o.expected, digest);
      if (o.expectedSize !== undefined && size !== o.expectedSize) throw new Error(`size mismatch: ${size} != ${o.expectedSize}`);
      await rename(tmp, this.#path(digest));
      return { digest, size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  putBytes(data: Uint8Array | string, o: { expected?: Digest } = {}): Promise<{ digest: Digest; size: number }> {
    return this.put(Readable.from([typeof data === 'string' ? Buffer.from(data) : Buffer.from(data)]), o);
  }
}
