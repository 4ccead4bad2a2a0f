/**
 * Streaming tar reader: yields one entry at a time; each entry's body must be consumed (or is
 * skipped) before the next header is read. Only bounded metadata (headers, PAX, GNU long names)
 * is ever buffered, so hostile sizes cannot exhaust memory.
 */
import { TsbuildError } from '../../util/errors.js';
import { BLOCK, decodeHeader, decodePax, type EntryType, type TarHeader } from './header.js';

const MAX_META = 1 << 20; // PAX / long-name bodies larger than this are rejected

const EMPTY = Buffer.alloc(0);

/** Pulls exact byte counts out of an async chunk source. */
class ByteReader {
  #it: AsyncIterator<Uint8Array>;
  #buf: Buffer = EMPTY;
  #done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#done) return undefined;
    const r = await this.#it.next();
    if (r.done === true) {
      this.#done = true;
      return undefined;
    }
    return Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
  }

  /**
   * Exactly n bytes, or fewer only at end of input. Only the n bytes are ever copied (a header
   * straddling two chunks), never the rest of the next chunk: joining whole chunks copied every
   * byte of a many-small-files layer once more and kept the GC busy.
   */
  async read(n: number): Promise<Buffer> {
    if (this.#buf.length >= n) {
      const out = this.#buf.subarray(0, n);
      this.#buf = this.#buf.subarray(n);
      return out;
    }
    const parts = [this.#buf];
    let have = this.#buf.length;
    this.#buf = EMPTY;
    while (have < n) {
      const chunk = await this.#next();
      if (chunk === undefined) break;
      const take = Math.min(n - have, chunk.length);
      parts.push(chunk.subarray(0, take));
      have += take;
      this.#buf = chunk.subarray(take);
    }
    return Buffer.concat(parts, have);
  }

  /** Yields up to n bytes in source-sized chunks; throws on early end. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0) {
        const chunk = await this.#next();
        if (chunk === undefined) throw new TsbuildError('LAYER', 'unexpected end of tar data');
        this.#buf = chunk;
      }
      const out = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(out.length);
      left -= out.length;
      yield out;
    }
  }

  async drain(): Promise<void> {
    this.#buf = EMPTY;
    while ((await this.#next()) !== undefined);
  }
}

export interface TarEntry {
  header: TarHeader;
  /** The entry's data (files only). Must be consumed before pulling the next entry. */
  body: AsyncIterable<Buffer>;
}

const TYPES: Record<string, EntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

async function readMeta(reader: ByteReader, size: number): Promise<Buffer> {
  if (size > MAX_META) throw new TsbuildError('LAYER', `tar metadata entry too large (${size} bytes)`);
  const body = await reader.read(size);
  if (body.length < size) throw new TsbuildError('LAYER', 'unexpected end of tar metadata');
  await reader.read((BLOCK - (size % BLOCK)) % BLOCK);
  return body;
}

function trimNul(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return (nul === -1 ? buf : buf.subarray(0, nul)).toString('utf8');
}

export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source);
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.read(BLOCK);
    if (block.length === 0) break; // tolerate a missing end-of-archive marker
    if (block.length < BLOCK) throw new TsbuildError('LAYER', 'truncated tar header');
    const raw = decodeHeader(block);
    if (raw === undefined) {
      await reader.drain(); // end marker: trailing zero blocks / padding
      break;
    }
    const t = raw.typeflag;
    if (t === 'x') {
      pax = decodePax(await readMeta(reader, raw.size));
      continue;
    }
    if (t === 'g') {
      // Ignored, as Go's archive/tar users (docker, containerd, BuildKit) ignore it: applied to
      // every later entry, a global `path=` or `size=` would make this reader see files other than
      // the ones the image's scanners and every other runtime see.
      await readMeta(reader, raw.size);
      continue;
    }
    if (t === 'L' || t === 'K') {
      const value = trimNul(await readMeta(reader, raw.size));
      if (t === 'L') longName = value;
      else longLink = value;
      continue;
    }
    const type = TYPES[t];
    if (type === undefined) throw new TsbuildError('LAYER', `unsupported tar entry type ${JSON.stringify(t)} for ${raw.name}`);
    const records = pax ?? new Map<string, Buffer>();
    const num = (key: string, fallback: number): number => {
      const v = records.get(key);
      if (v === undefined) return fallback;
      const n = Number(v.toString('ascii'));
      if (!Number.isSafeInteger(n) || n < 0) throw new TsbuildError('LAYER', `bad PAX ${key}`);
      return n;
    };
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of records) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    const header: TarHeader = {
      name: records.get('path')?.toString('utf8') ?? longName ?? raw.name,
      type,
      mode: raw.mode & 0o7777,
      uid: num('uid', raw.uid),
      gid: num('gid', raw.gid),
      size: type === 'file' ? num('size', raw.size) : 0,
      mtime: Math.floor(Number(records.get('mtime')?.toString('ascii') ?? raw.mtime)) || 0,
      linkname: records.get('linkpath')?.toString('utf8') ?? longLink ?? raw.linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs,
    };
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    // Non-file entries may still declare a size (hard links in some writers): it is skipped.
    const dataSize = type === 'file' ? header.size : raw.size;
    let remaining = dataSize;
    const body = (async function* () {
      if (type !== 'file') return;
      for await (const chunk of reader.chunks(remaining)) {
        remaining -= chunk.length;
        yield chunk;
      }
    })();
    yield { header, body };
    for await (const chunk of reader.chunks(remaining)) remaining -= chunk.length;
    await reader.read((BLOCK - (dataSize % BLOCK)) % BLOCK);
  }
}
