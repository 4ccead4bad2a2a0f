/**
 * Tags live in the OCI layout's index.json as `org.opencontainers.image.ref.name` annotations,
 * so skopeo/umoci read the store as is. Every mutation is read-modify-write under the store lock
 * with an atomic replace, so concurrent builds never lose each other's tags.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MediaType } from '../image/mediatypes.js';
import type { Descriptor, Index } from '../image/types.js';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { writeAtomic } from '../util/fs.js';
import { rethrowNoSpace } from './nospace.js';
import type { Signal, Tags } from './types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

export function emptyIndex(): Index {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
}

/** Read synchronously (every command reads it, a few KiB; a thread-pool round trip costs more), as a promise. */
export function readIndex(root: string): Promise<Index> {
  return Promise.resolve().then(() => readIndexNow(root));
}

function readIndexNow(root: string): Index {
  let text: string;
  try {
    text = readFileSync(join(root, 'index.json'), 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return emptyIndex();
    throw err;
  }
  try {
    const index = JSON.parse(text) as Index;
    if (!Array.isArray(index.manifests)) throw new Error('manifests is not an array');
    return index;
  } catch (err) {
    throw new TsbuildError('STORE', `${join(root, 'index.json')} is corrupt`, { cause: err });
  }
}

export async function writeIndex(root: string, tmpDir: string, index: Index, signal?: AbortSignal): Promise<void> {
  await writeAtomic(join(root, 'index.json'), `${JSON.stringify(index, null, 2)}\n`, signal ? { tmpDir, signal } : { tmpDir }).catch(
    rethrowNoSpace(root, 'writing index.json'),
  );
}

type WithLock = <T>(fn: () => Promise<T>, options?: Signal) => Promise<T>;

export function createTags(root: string, tmpDir: string, withLock: WithLock): Tags {
  const named = (d: Descriptor): string | undefined => d.annotations?.[REF_NAME];
  return {
    async list() {
      const index = await readIndex(root);
      return index.manifests.flatMap((d) => {
        const name = named(d);
        return name === undefined ? [] : [{ name, descriptor: d }];
      });
    },
    async get(name) {
      return (await readIndex(root)).manifests.find((d) => named(d) === name);
    },
    async set(name, descriptor, options = {}) {
      if (name === '') throw new TsbuildError('USAGE', 'empty tag name');
      await withLock(async () => {
        const index = await readIndex(root);
        const entry: Descriptor = { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: name } };
        // A no-change rebuild re-tags the same image: leave index.json (and its fsync) alone.
        const current = index.manifests.find((d) => named(d) === name);
        if (current !== undefined && JSON.stringify(current) === JSON.stringify(entry)) return;
        index.manifests = [...index.manifests.filter((d) => named(d) !== name), entry];
        await writeIndex(root, tmpDir, index, options.signal);
      }, options);
    },
    async remove(name, options = {}) {
      return withLock(async () => {
        const index = await readIndex(root);
        const kept = index.manifests.filter((d) => named(d) !== name);
        if (kept.length === index.manifests.length) return false;
        index.manifests = kept;
        await writeIndex(root, tmpDir, index, options.signal);
        return true;
      }, options);
    },
  };
}
