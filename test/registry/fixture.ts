import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import type { Descriptor, ImageConfig, Manifest } from '../../src/image/types.js';
import type { DirStore } from './dir-store.js';

export interface TestImage {
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestMediaType: string;
  digest: Digest;
  config: ImageConfig;
  layers: Buffer[];
}

async function gzipTar(files: Record<string, Buffer | string>): Promise<{ gz: Buffer; diffId: Digest }> {
  const p = pack();
  for (const [name, content] of Object.entries(files)) p.entry({ name, mtime: new Date(0), mode: 0o644 }, content);
  p.finalize();
  const raw: Buffer[] = [];
  const gz: Buffer[] = [];
  const gzip = createGzip();
  gzip.on('data', (c: Buffer) => gz.push(c));
  const done = new Promise((resolve, reject) => gzip.on('end', resolve).on('error', reject));
  for await (const chunk of p) {
    raw.push(chunk as Buffer);
    gzip.write(chunk);
  }
  gzip.end();
  await done;
  return { gz: Buffer.concat(gz), diffId: sha256Digest(Buffer.concat(raw)) };
}

/** Pseudo-random bytes that gzip cannot shrink, so a layer of `size` is really that large. */
export function noise(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * A synthetic image: real gzipped tar layers, a config with their diff IDs, an OCI manifest.
 * Blobs are written into `store` so it can act as the push source.
 */
export async function makeImage(store: DirStore, layerFiles: Record<string, Buffer | string>[], label = 'test'): Promise<TestImage> {
  const layers: Buffer[] = [];
  const descs: Descriptor[] = [];
  const diffIds: Digest[] = [];
  for (const files of layerFiles) {
    const { gz, diffId } = await gzipTar(files);
    layers.push(gz);
    diffIds.push(diffId);
    const { digest } = await store.putBytes(gz);
    descs.push({ mediaType: MediaType.OciLayerGzip, digest, size: gz.length });
  }
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], Labels: { label } },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const { digest: configDigest } = await store.putBytes(configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
    layers: descs,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { manifest, manifestBytes, manifestMediaType: MediaType.OciManifest, digest: sha256Digest(manifestBytes), config, layers };
}
