/**
 * Build outputs (`-o`): OCI and docker archives of the image, and the image's final root
 * filesystem as plain files (`local`) or as one tar (`tar`), whiteouts applied. `dest=-` writes
 * the file types to the given stdout. Registry pushes are the CLI's (they need its auth setup):
 * `parseOutput` only recognises them.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Digest, Manifest } from '../image/index.js';
import { changesToTar, exportDockerArchive, exportOciArchive, extractLayer, upperDirChanges } from '../layers/index.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';

export type OutputSpec =
  | { type: 'oci' | 'docker' | 'tar'; dest: string }
  | { type: 'local'; dest: string }
  | { type: 'registry'; name?: string };

const FILE_TYPES = new Set(['oci', 'docker', 'tar']);

/** `type=oci,dest=F`, `type=local,dest=DIR`, `type=registry[,name=REF]`, or a bare `DIR` (= local). */
export function parseOutput(spec: string): OutputSpec {
  if (!spec.includes('=')) {
    if (spec === '' || spec === '-') throw new TsbuildError('USAGE', `--output ${JSON.stringify(spec)}: give a directory, or type=tar,dest=- for stdout`);
    return { type: 'local', dest: spec };
  }
  const kv: Record<string, string> = {};
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new TsbuildError('USAGE', `--output: expected key=value, got ${JSON.stringify(part)} in ${spec}`);
    kv[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  const type = kv.type ?? 'local';
  if (type === 'registry' || type === 'image') return { type: 'registry', ...(kv.name !== undefined ? { name: kv.name } : {}) };
  const dest = kv.dest;
  if (dest === undefined || dest === '') throw new TsbuildError('USAGE', `--output type=${type} needs dest=PATH: ${spec}`);
  if (type === 'local') {
    if (dest === '-') throw new TsbuildError('USAGE', 'type=local cannot write to stdout; use type=tar,dest=-');
    return { type, dest };
  }
  if (FILE_TYPES.has(type)) return { type: type as 'oci' | 'docker' | 'tar', dest };
  throw new TsbuildError('USAGE', `unsupported output type ${type} (supported: oci, docker, local, tar, registry)`);
}

export interface OutputImage {
  /** Name recorded in oci/docker archives. */
  name: string;
  manifestDigest: Digest;
}

export async function writeFileOutput(
  store: Store,
  spec: Exclude<OutputSpec, { type: 'registry' }>,
  image: OutputImage,
  options: { stdout: NodeJS.WritableStream; signal?: AbortSignal; sourceDateEpoch?: number },
): Promise<void> {
  const signal = options.signal;
  if (spec.type === 'local') return exportRootfs(store, image.manifestDigest, spec.dest, signal);
  const toStdout = spec.dest === '-';
  const out = toStdout ? options.stdout : await openOutput(spec.dest);
  try {
    const refs = [{ name: image.name, manifest: image.manifestDigest }];
    const sig = signal !== undefined ? { signal } : {};
    if (spec.type === 'oci') await exportOciArchive(store, refs, out, { compression: 'gzip', ...sig });
    else if (spec.type === 'docker') await exportDockerArchive(store, refs, out, sig);
    else await rootfsTar(store, image.manifestDigest, out, { ...sig, ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}) });
  } finally {
    if (!toStdout) {
      out.end();
      await finished(out).catch(() => undefined);
    }
  }
}

/** Applies every layer in order onto `dest` (created if missing): whiteouts delete, as on a real rootfs. */
export async function exportRootfs(store: Store, manifestDigest: Digest, dest: string, signal?: AbortSignal): Promise<void> {
  const manifest = await store.blobs.readJson<Manifest>(manifestDigest, { maxSize: 4 << 20, ...(signal !== undefined ? { signal } : {}) });
  for (const layer of manifest.layers) {
    const blob = await store.blobs.open(layer.digest, signal !== undefined ? { signal } : {});
    await extractLayer(blob, dest, { mode: 'apply', ...(signal !== undefined ? { signal } : {}) });
  }
}

/** The flattened rootfs as one tar: unpacked into the store's tmp dir, then tarred with the layer writer. */
async function rootfsTar(store: Store, manifestDigest: Digest, out: NodeJS.WritableStream, options: { signal?: AbortSignal; sourceDateEpoch?: number }): Promise<void> {
  const dir = await mkdtemp(join(store.tmpDir, 'rootfs-'));
  try {
    const root = join(dir, 'root');
    await exportRootfs(store, manifestDigest, root, options.signal);
    const changes = await upperDirChanges(root, [], options.signal !== undefined ? { signal: options.signal } : {});
    const tar = changesToTar(root, changes, options);
    for await (const chunk of tar) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The output file, opened before anything is written: a dest that cannot be created (no such
 * dir, a directory) is a clear error, not an unhandled stream 'error' that kills the process.
 */
async function openOutput(dest: string): Promise<NodeJS.WritableStream> {
  const fh = await open(dest, 'w').catch((err: unknown) => {
    throw new TsbuildError('USAGE', `cannot write the output ${dest}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  });
  return fh.createWriteStream();
}
