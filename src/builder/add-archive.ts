/**
 * ADD's archive auto-extraction, BuildKit style: a source is an archive when its content (never
 * its name) is a tar, plain or compressed with gzip, bzip2, xz or zstd, whose first header
 * decodes. Extraction streams: gzip/zstd through the layers codec, bzip2/xz through the system
 * `bzip2 -dc` / `xz -dc`, and the tar goes through layers' hostile-safe extractor ('apply' mode)
 * into a fresh staging dir, so `..`, absolute names and symlink tricks stay inside it.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { extractLayer } from '../layers/index.js';
import { decompress, ratioGuarded, spawnFilter } from '../layers/codec.js';
import { BLOCK, decodeHeader } from '../layers/tar/header.js';
import { TsbuildError } from '../util/errors.js';

export type ArchiveFormat = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

function formatOf(head: Buffer): ArchiveFormat {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'tar';
}

function decompressed(format: ArchiveFormat, path: string, signal?: AbortSignal): AsyncIterable<Buffer> {
  const file = createReadStream(path, signal !== undefined ? { signal } : {}) as AsyncIterable<Buffer>;
  if (format === 'tar') return file;
  // The layers' decompression-bomb guard applies here too: an archive from the context (or a
  // `build -` tar) expanding past 1:200 is refused, not unpacked until the disk is full.
  let read = 0;
  const raw = (async function* () {
    for await (const chunk of file) {
      read += chunk.length;
      yield chunk;
    }
  })();
  const inner = format === 'gzip' || format === 'zstd' ? decompress(format, raw, signal) : spawnFilter(format, ['-dc'], raw, signal);
  return ratioGuarded(format, inner, () => read);
}

/** The archive format of a regular file, or undefined when it is not a (compressed) tar. */
export async function detectArchive(path: string, signal?: AbortSignal): Promise<ArchiveFormat | undefined> {
  const fh = await open(path, 'r');
  let head: Buffer;
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const format = formatOf(head);
  // The first tar block after one decompression must be a valid header (Go: tar.Reader.Next()).
  const chunks: Buffer[] = [];
  let have = 0;
  try {
    for await (const chunk of decompressed(format, path, signal)) {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= BLOCK) break; // leaving the loop stops (and kills) a decompressor process
    }
  } catch (err) {
    if (signal?.aborted === true) throw err;
    return undefined; // corrupt compressed data: not an archive, copied as a file
  }
  if (have < BLOCK) return undefined;
  try {
    return decodeHeader(Buffer.concat(chunks).subarray(0, BLOCK)) !== undefined ? format : undefined;
  } catch {
    return undefined;
  }
}

/** Extracts an archive into `dir` (created if missing); every entry is contained in `dir`. */
export async function unpackArchive(path: string, format: ArchiveFormat, dir: string, label: string, signal?: AbortSignal): Promise<void> {
  try {
    await extractLayer(decompressed(format, path, signal), dir, { mode: 'apply', ...(signal !== undefined ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted === true) throw err;
    throw new TsbuildError('CONTEXT', `cannot unpack ${label} (${format} archive): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
