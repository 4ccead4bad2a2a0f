/**
 * Build outputs (`-o`): OCI and docker archives of the image, and the image's final root
 * filesystem as plain files (`local`) or as one tar (`tar`), whiteouts applied. `dest=-` writes
 * the file types to the given stdout. Registry pushes are the CLI's (they need its auth setup):
 * `parseOutput` only recognises them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Digest, Manifest } from '../image/index.js';
import { changesToTar, exportDockerArchive, exportOciArchive, extractLayer, upperDirChanges } from '../layers/index.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';
import { checkOutputDir, checkOutputFile, writeOutputDir, writeOutputFile } from '../util/output-file.js';

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

/**
 * Writes one file or directory output. A file is written to a temporary sibling and renamed into
 * place when complete, a new directory likewise (util/output-file.ts): a failure leaves no partial
 * output behind and an existing file as it was.
 */
export async function writeFileOutput(
  store: Store,
  spec: Exclude<OutputSpec, { type: 'registry' }>,
  image: OutputImage,
  options: { stdout: NodeJS.WritableStream; signal?: AbortSignal; sourceDateEpoch?: number },
): Promise<void> {
  const signal = options.signal;
  if (spec.type === 'local') return writeOutputDir(spec.dest, (dir) => exportRootfs(store, image.manifestDigest, dir, signal));
  const refs = [{ name: image.name, manifest: image.manifestDigest }];
  const sig = signal !== undefined ? { signal } : {};
  const write = async (out: NodeJS.WritableStream): Promise<void> => {
    if (spec.type === 'oci') await exportOciArchive(store, refs, out, { compression: 'gzip', ...sig });
    else if (spec.type === 'docker') await exportDockerArchive(store, refs, out, sig);
    else await rootfsTar(store, image.manifestDigest, out, { ...sig, ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}) });
  };
  if (spec.dest === '-') return write(options.stdout);
  return writeOutputFile(spec.dest, write);
}

/** Checks a file or directory output's destination before the build (so a bad one leaves no new image or tag). */
export async function checkOutputDest(spec: OutputSpec): Promise<void> {
  if (spec.type === 'registry' || spec.dest === '-') return;
  if (spec.type === 'local') await checkOutputDir(spec.dest);
  else await checkOutputFile(spec.dest);
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
    // pipeline, not a write loop: an error of `out` must fail the export (a loop would wait for a
    // 'drain' that never comes). Not ended here: stdout stays open, a file output ends its own.
    await pipeline(changesToTar(root, changes, options), out, { end: false });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

