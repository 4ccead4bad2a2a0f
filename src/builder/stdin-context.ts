/**
 * `tsbuild build -`, as `docker build -`: stdin holds either the build context as a tar (plain,
 * gzip, bzip2, xz or zstd, told apart by content as ADD does) or a Dockerfile alone, built with an
 * empty context. The stream is spooled to the store's tmp dir (never held in memory), a tar is
 * unpacked with the hostile-safe layer extractor into a private dir, and everything goes again
 * with `dispose()`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { dockerfileTooLarge, MAX_DOCKERFILE_BYTES } from '../parser/index.js';
import { detectArchive, unpackArchive } from './add-archive.js';

export interface StdinContext {
  /** The context dir: the unpacked tar, or empty when stdin was a Dockerfile. */
  dir: string;
  /** Set when stdin was a Dockerfile rather than a context archive. */
  dockerfileText?: string;
  dispose(): Promise<void>;
}

export async function contextFromStream(source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream, tmpDir: string, signal?: AbortSignal): Promise<StdinContext> {
  return inWorkDir(tmpDir, async (work) => {
    const input = join(work, 'input');
    await pipeline(Readable.from(source as AsyncIterable<Uint8Array>), createWriteStream(input, { flags: 'wx' }), signal !== undefined ? { signal } : {});
    const context = await readContext(input, work, 'stdin', signal);
    await rm(input);
    return context;
  });
}

/** The same from a file already on disk (a downloaded context): read in place, left as it is. */
export function contextFromFile(input: string, tmpDir: string, what: string, signal?: AbortSignal): Promise<StdinContext> {
  return inWorkDir(tmpDir, (work) => readContext(input, work, what, signal));
}

async function inWorkDir(tmpDir: string, fill: (work: string) => Promise<Omit<StdinContext, 'dispose'>>): Promise<StdinContext> {
  await mkdir(tmpDir, { recursive: true });
  const work = await mkdtemp(join(tmpDir, 'stdin-'));
  const dispose = (): Promise<void> => rm(work, { recursive: true, force: true });
  try {
    return { ...(await fill(work)), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** `input` as a context tar unpacked into `work`/context, else as a Dockerfile with an empty context. */
async function readContext(input: string, work: string, what: string, signal?: AbortSignal): Promise<Omit<StdinContext, 'dispose'>> {
  const dir = join(work, 'context');
  await mkdir(dir, { mode: 0o755 });
  const format = await detectArchive(input, signal);
  if (format !== undefined) {
    await unpackArchive(input, format, dir, `the build context on ${what}`, signal);
    return { dir };
  }
  // Not an archive, so a Dockerfile: refused unread when too large for one (parser/limits.ts).
  const size = (await stat(input)).size;
  if (size > MAX_DOCKERFILE_BYTES) {
    throw dockerfileTooLarge(`${what} (not a tar archive, so read as a Dockerfile)`, { size, hint: 'a context must be a tar archive (plain, gzip, bzip2, xz or zstd)' });
  }
  return { dir, dockerfileText: await readFile(input, 'utf8') };
}
