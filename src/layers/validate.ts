/**
 * validateImage: go-containerregistry's `validate.Image` rules against blobs in the store —
 * config digest/size, each layer blob's digest/size, the uncompressed diffID equal to
 * rootfs.diff_ids[i], media types matching the actual compression, no duplicate paths in a layer.
 * Lives in layers/ (not image/) because it reads the store and parses tars.
 */
import { createHash } from 'node:crypto';
import { digestFromHash, type Digest } from '../image/digest.js';
import { checkImageShape, parseConfig, parseManifest } from '../image/manifest.js';
import { layerCompression } from '../image/mediatypes.js';
import type { Descriptor, ImageConfig, Manifest } from '../image/types.js';
import type { Store } from '../store/types.js';
import { messageOf } from '../util/errors.js';
import { sniff, decompress, detectCompression } from './codec.js';
import { cleanComponents } from './rootpath.js';
import { readTar } from './tar/reader.js';

export interface Validation {
  ok: boolean;
  problems: string[];
}

async function checkLayer(store: Store, desc: Descriptor, diffId: Digest | undefined, i: number, signal?: AbortSignal): Promise<string[]> {
  const problems: string[] = [];
  const size = await store.blobs.size(desc.digest);
  if (size === undefined) return [`layer ${i} blob ${desc.digest} is missing`];
  if (size !== desc.size) problems.push(`layer ${i} size is ${size}, descriptor says ${desc.size}`);
  const { head, stream } = await sniff((await store.blobs.open(desc.digest, signal ? { signal } : {})) as AsyncIterable<Buffer>);
  const actual = detectCompression(head);
  const declared = layerCompression(desc.mediaType);
  if (declared !== undefined && declared !== actual) problems.push(`layer ${i} is ${actual} but media type says ${declared}`);
  const hash = createHash('sha256');
  const hashed = (async function* () {
    for await (const chunk of decompress(actual, stream, signal)) {
      hash.update(chunk);
      yield chunk;
    }
  })();
  const seen = new Set<string>();
  for await (const { header } of readTar(hashed)) {
    const path = cleanComponents(header.name).join('/');
    if (path !== '' && seen.has(path)) problems.push(`layer ${i} has duplicate path ${path}`);
    seen.add(path);
  }
  const computed = digestFromHash(hash);
  if (diffId !== undefined && computed !== diffId) problems.push(`layer ${i} diffID is ${computed}, config says ${diffId}`);
  return problems;
}

/** Checks an image in the store; never throws for a bad image (problems are returned). */
export async function validateImage(
  store: Store,
  target: Digest | { manifest: Manifest; config: ImageConfig },
  options: { signal?: AbortSignal; layers?: boolean } = {},
): Promise<Validation> {
  const problems: string[] = [];
  const opts = options.signal ? { signal: options.signal } : {};
  try {
    let manifest: Manifest;
    let config: ImageConfig;
    if (typeof target === 'string') {
      manifest = parseManifest(await store.blobs.readBytes(target, opts));
      const bytes = await store.blobs.readBytes(manifest.config.digest, opts);
      if (bytes.length !== manifest.config.size) problems.push(`config size is ${bytes.length}, descriptor says ${manifest.config.size}`);
      config = parseConfig(bytes);
    } else {
      ({ manifest, config } = target);
      const bytes = await store.blobs.readBytes(manifest.config.digest, opts);
      if (bytes.length !== manifest.config.size) problems.push(`config size is ${bytes.length}, descriptor says ${manifest.config.size}`);
    }
    problems.push(...checkImageShape(manifest, config));
    if (options.layers !== false) {
      for (const [i, layer] of manifest.layers.entries()) {
        try {
          problems.push(...(await checkLayer(store, layer, config.rootfs.diff_ids[i], i, options.signal)));
        } catch (err) {
          problems.push(`layer ${i}: ${messageOf(err)}`);
        }
      }
    }
  } catch (err) {
    problems.push(messageOf(err));
  }
  return { ok: problems.length === 0, problems };
}
