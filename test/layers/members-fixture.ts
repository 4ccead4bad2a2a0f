/** Shared by the libdeflate tests: sample data, chunked sources, and a walk over our gzip members. */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { loadLibdeflate, MEMBER_HEADER, memberSize, type Libdeflate } from '../../src/layers/libdeflate.js';

export const MiB = 1 << 20;

/** Half random, half repetitive text: both stored and well-compressing blocks. */
export function sample(size: number, seed = 1): Buffer {
  const line = `line ${seed} the quick brown fox jumps over the lazy dog 0123456789\n`;
  const text = Buffer.from(line.repeat(Math.ceil(size / 2 / line.length) + 1));
  return Buffer.concat([randomBytes(Math.floor(size / 2)), text]).subarray(0, size);
}

export function chunked(data: Buffer, chunk: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) chunks.push(data.subarray(i, i + chunk));
  return Readable.from(chunks);
}

/** Each member's [offset, total size, ISIZE], walking the 'TB' subfields. */
export function members(gz: Buffer): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (let at = 0; at < gz.length; ) {
    const size = memberSize(gz.subarray(at, at + MEMBER_HEADER));
    if (size === undefined) throw new Error(`no member header at ${at}`);
    out.push([at, size, gz.readUInt32LE(at + size - 4)]);
    at += size;
  }
  return out;
}

export function ld(): Libdeflate {
  const lib = loadLibdeflate();
  // The test machine has libdeflate0 (scripts/install-test-deps.sh): its absence is a failure, not a skip.
  if (lib === undefined) throw new Error('libdeflate.so.0 or dist/native/deflate.node missing (run scripts/build-native.mjs)');
  return lib;
}

