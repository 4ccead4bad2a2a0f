/**
 * Tar header codec (ustar + PAX). tsbuild writes and reads tar itself instead of through tar-stream
 * because PAX xattr values (`SCHILY.xattr.security.capability`) are binary and tar-stream decodes
 * PAX records as UTF-8 strings, which corrupts them; owning the codec also keeps output byte-stable.
 */
import { TsbuildError } from '../../util/errors.js';
import { byKey } from '../../util/order.js';

export type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: EntryType;
  mode: number; // permission bits incl. setuid/setgid/sticky
  uid: number;
  gid: number;
  size: number;
  mtime: number; // seconds
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: ReadonlyMap<string, Buffer>;
}

export const BLOCK = 512;

const TYPE_FLAG: Record<EntryType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

function writeString(buf: Buffer, value: string, offset: number, length: number): void {
  buf.write(value, offset, length, 'utf8');
}

function fitsOctal(value: number, length: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value < 8 ** (length - 1);
}

function writeOctal(buf: Buffer, value: number, offset: number, length: number): void {
  buf.write(value.toString(8).padStart(length - 1, '0') + '\0', offset, length, 'ascii');
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "<len> <key>=<value>\n" where len counts its own digits: iterate until stable.
  const rest = Buffer.byteLength(` ${key}=`) + value.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')]);
}

function ustarBlock(h: TarHeader, name: string, linkname: string, type: string, size: number): Buffer {
  const buf = Buffer.alloc(BLOCK);
  writeString(buf, name, 0, 100);
  writeOctal(buf, h.mode & 0o7777, 100, 8);
  writeOctal(buf, fitsOctal(h.uid, 8) ? h.uid : 0, 108, 8);
  writeOctal(buf, fitsOctal(h.gid, 8) ? h.gid : 0, 116, 8);
  writeOctal(buf, fitsOctal(size, 12) ? size : 0, 124, 12);
  writeOctal(buf, fitsOctal(h.mtime, 12) ? h.mtime : 0, 136, 12);
  buf.fill(' ', 148, 156);
  buf.write(type, 156, 1, 'ascii');
  if (linkname !== '') writeString(buf, linkname, 157, 100);
  buf.write('ustar\0' + '00', 257, 8, 'ascii');
  writeOctal(buf, h.devmajor, 329, 8);
  writeOctal(buf, h.devminor, 337, 8);
  // An indexed loop: iterating a Buffer with for-of costs more than the rest of the header.
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += buf[i] as number;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return buf;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Header blocks for one entry: an optional PAX record block set, then the ustar block. */
export function encodeHeader(h: TarHeader): Buffer {
  const records: Buffer[] = [];
  const name = h.type === 'dir' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  // Printable ASCII of at most 100 chars fits the ustar field as is (then length = bytes).
  const plain = (s: string): boolean => s.length <= 100 && /^[\x20-\x7e]*$/.test(s);
  const nameFits = plain(name);
  const linkFits = plain(h.linkname);
  if (!nameFits) records.push(paxRecord('path', Buffer.from(name)));
  if (!linkFits) records.push(paxRecord('linkpath', Buffer.from(h.linkname)));
  if (!fitsOctal(h.size, 12)) records.push(paxRecord('size', Buffer.from(String(h.size))));
  if (!fitsOctal(h.uid, 8)) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (!fitsOctal(h.gid, 8)) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (h.xattrs.size > 0) {
    for (const [key, value] of [...h.xattrs].sort(byKey)) {
      records.push(paxRecord(`SCHILY.xattr.${key}`, value));
    }
  }
  const short = (s: string): string => Buffer.from(s).subarray(0, 100).toString('latin1');
  const main = ustarBlock(h, nameFits ? name : short(name), linkFits ? h.linkname : short(h.linkname), TYPE_FLAG[h.type], h.size);
  if (records.length === 0) return main;
  const body = Buffer.concat(records);
  const paxName = short(`PaxHeaders/${name}`);
  const paxHead = ustarBlock({ ...h, mode: 0o644, uid: 0, gid: 0, devmajor: 0, devminor: 0 }, paxName, '', 'x', body.length);
  return Buffer.concat([paxHead, body, Buffer.alloc(padding(body.length)), main]);
}

export function paddingFor(size: number): Buffer {
  return Buffer.alloc(padding(size));
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

function parseNumeric(buf: Buffer, offset: number, length: number): number {
  const first = buf[offset] ?? 0;
  if (first & 0x80) {
    // GNU base-256: big-endian with the top bit as a marker.
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + (buf[offset + i] ?? 0);
    if (!Number.isSafeInteger(value)) throw new TsbuildError('LAYER', 'tar numeric field out of range');
    return value;
  }
  const text = buf.toString('ascii', offset, offset + length).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TsbuildError('LAYER', `bad tar numeric field ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function parseString(buf: Buffer, offset: number, length: number): string {
  const slice = buf.subarray(offset, offset + length);
  const nul = slice.indexOf(0);
  return (nul === -1 ? slice : slice.subarray(0, nul)).toString('utf8');
}

export interface RawHeader {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

/** Decodes one 512-byte header block; undefined for an all-zero (end) block. */
export function decodeHeader(buf: Buffer): RawHeader | undefined {
  if (buf.every((b) => b === 0)) return undefined;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (buf[i] ?? 0);
  // The checksum field of something that is not a tar at all is not a number either: same message.
  let stored: number | undefined;
  try {
    stored = parseNumeric(buf, 148, 8);
  } catch {
    stored = undefined;
  }
  if (sum !== stored) throw new TsbuildError('LAYER', 'tar header checksum mismatch (corrupt or not a tar)');
  let name = parseString(buf, 0, 100);
  const magic = buf.toString('ascii', 257, 263);
  if (magic === 'ustar\0') {
    const prefix = parseString(buf, 345, 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    name,
    typeflag: String.fromCharCode(buf[156] ?? 0),
    mode: parseNumeric(buf, 100, 8),
    uid: parseNumeric(buf, 108, 8),
    gid: parseNumeric(buf, 116, 8),
    size: parseNumeric(buf, 124, 12),
    mtime: parseNumeric(buf, 136, 12),
    linkname: parseString(buf, 157, 100),
    devmajor: magic.startsWith('ustar') ? parseNumeric(buf, 329, 8) : 0,
    devminor: magic.startsWith('ustar') ? parseNumeric(buf, 337, 8) : 0,
  };
}

/** Parses PAX records, keeping values as raw bytes (xattr values are binary). */
export function decodePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number(body.toString('ascii', pos, space));
    if (!Number.isSafeInteger(len) || len <= 0 || pos + len > body.length) {
      throw new TsbuildError('LAYER', 'malformed PAX record');
    }
    const record = body.subarray(space + 1, pos + len - 1); // strip trailing \n
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new TsbuildError('LAYER', 'malformed PAX record (no "=")');
    out.set(record.subarray(0, eq).toString('utf8'), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}
