/**
 * libdeflate through the `deflate` addon (native/addon/deflate.c), which dlopen()s the shared
 * library at first use: 2-3x faster deflate than zlib at the same ratio, and faster inflate. Our
 * gzip output with it is a series of gzip members, one per ~1 MiB block, each carrying a 'TB'
 * FEXTRA subfield with the member's total size so a reader can split the stream without inflating
 * (like BGZF; RFC 1952 allows any number of members and every gunzip reads them).
 * Absent addon, absent libdeflate.so.0 or TSBUILD_NO_LIBDEFLATE=1: `loadLibdeflate()` is undefined
 * and callers keep zlib.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { nativeDirs } from '../util/native.js';

export interface Libdeflate {
  /** One whole gzip member of `input` (header with the 'TB' size subfield, deflate, CRC32, ISIZE) on the libuv pool. */
  gzipMember(input: Uint8Array, level: number): Promise<Buffer>;
  /**
   * Inflates the raw deflate stream that is exactly `input` into exactly `size` bytes with CRC32
   * `crc`; null otherwise. With `into` (at least `size` bytes, held until the promise settles) the
   * bytes are written there and `into` resolves.
   */
  inflateRaw(input: Uint8Array, size: number, crc: number, into?: Uint8Array): Promise<Uint8Array | null>;
}

interface Addon extends Libdeflate {
  available(): boolean;
}

let loaded: Libdeflate | null | undefined;

export function loadLibdeflate(): Libdeflate | undefined {
  if (loaded === undefined) {
    const path = nativeDirs()
      .map((d) => join(d, 'deflate.node'))
      .find((p) => existsSync(p));
    const addon = path === undefined ? undefined : (createRequire(import.meta.url)(path) as Addon);
    loaded = addon?.available() === true ? addon : null;
  }
  return process.env['TSBUILD_NO_LIBDEFLATE'] === '1' ? undefined : (loaded ?? undefined);
}

/** Bytes of our member header: the 10 fixed ones, XLEN, and the one 8-byte subfield. */
export const MEMBER_HEADER = 20;
/** CRC32 and ISIZE. */
export const MEMBER_TRAILER = 8;
const OURS = Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 8, 0, 0x54, 0x42, 4, 0]);

/** The total size the member starting at `head` (≥ MEMBER_HEADER bytes) declares, or undefined if it is not exactly our header. */
export function memberSize(head: Buffer): number | undefined {
  return head.length >= MEMBER_HEADER && head.subarray(0, OURS.length).equals(OURS) ? head.readUInt32LE(16) : undefined;
}
