/**
 * The O_DIRECT blob writer (native/addon/writeback.c) the I/O worker uses for large blobs: whatever
 * the chunk sizes, the file holds exactly the bytes written, the tail that does not fill a 4 KiB
 * block included, also when more MiB are in flight than the handle has buffers; out-of-order writes
 * are refused; a write that fails on the handle's writer thread is reported by a later call; a
 * descriptor that cannot be opened for direct I/O gives null, so the worker keeps the buffered path.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writebackAddon } from '../../src/util/io-worker.js';
import { cleanup, tempDir } from '../layers/fixtures.js';

interface Writeback {
  directOpen(fd: number): object | null;
  directWrite(handle: object, bytes: Uint8Array, position: number): void;
  directFinish(handle: object): void;
  directClose(handle: object): void;
}

function addon(): Writeback {
  const path = writebackAddon();
  if (path === undefined) throw new Error('dist/native/writeback.node is not built (npm run build)');
  return createRequire(import.meta.url)(path) as Writeback;
}

let dir: string;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => cleanup(dir));

/** Writes `parts` in order through a direct handle; returns the file's bytes. */
function writeDirect(parts: Buffer[]): Buffer {
  const wb = addon();
  const file = join(dir, 'blob');
  const fd = openSync(file, 'wx');
  try {
    const handle = wb.directOpen(fd);
    expect(handle).not.toBeNull();
    if (handle === null) return Buffer.alloc(0);
    let position = 0;
    for (const part of parts) {
      wb.directWrite(handle, part, position);
      position += part.byteLength;
    }
    wb.directFinish(handle);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file);
}

describe('direct blob writer', () => {
  it.each([
    ['one whole MiB', [1 << 20]],
    ['sizes that never line up with a block', [1, 4095, 4097, 700_001, (1 << 20) + 3, 12_345]],
    ['a tar-like stream, 512-byte multiples ending mid-block', [512, 1 << 20, 1536, 3 * (1 << 20) + 512]],
    ['less than a block in all', [100]],
    ['nothing', []],
    ['more MiB than the handle has buffers, in odd pieces', [3 << 20, 5, (5 << 20) - 5, 777_777, 2 << 20, 4099]],
  ])('stores exactly the bytes written: %s', (_name, sizes) => {
    const parts = sizes.map((n) => randomBytes(n));
    expect(writeDirect(parts).equals(Buffer.concat(parts))).toBe(true);
  });

  it('takes views into a larger buffer at any offset', () => {
    const big = randomBytes(3 << 20);
    const parts = [big.subarray(7, 1_000_007), big.subarray(1_000_007, (3 << 20) - 5)];
    expect(writeDirect(parts).equals(big.subarray(7, (3 << 20) - 5))).toBe(true);
  });

  it('refuses a write that is not next in the file, and writes nothing more', () => {
    const wb = addon();
    const file = join(dir, 'blob');
    const fd = openSync(file, 'wx');
    try {
      const handle = wb.directOpen(fd);
      if (handle === null) throw new Error('no direct I/O on the test dir');
      wb.directWrite(handle, randomBytes(1000), 0);
      expect(() => wb.directWrite(handle, randomBytes(1000), 5000)).toThrow(/sequential/);
      wb.directClose(handle);
      expect(() => wb.directWrite(handle, randomBytes(10), 1000)).toThrow(/sequential/);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file).byteLength).toBe(0);
  });

  it('reports a write that failed on its thread (ENOSPC) from a later call, and leaves no thread', () => {
    const wb = addon();
    const small = join(dir, 'small');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', small]);
    const threads = (): number => readdirSync('/proc/self/task').length;
    const before = threads();
    const fd = openSync(join(small, 'blob'), 'wx');
    try {
      const handle = wb.directOpen(fd);
      if (handle === null) return; // this kernel's tmpfs takes no O_DIRECT: nothing to test here
      const chunk = randomBytes(1 << 20);
      let error: unknown;
      try {
        for (let i = 0; i < 16; i++) wb.directWrite(handle, chunk, i << 20);
        wb.directFinish(handle);
      } catch (err) {
        error = err;
      }
      expect(error).toMatchObject({ code: 'ENOSPC' });
      wb.directClose(handle);
      expect(threads()).toBe(before);
    } finally {
      closeSync(fd);
      execFileSync('umount', [small]);
    }
  });

  it('joins its writer thread when a handle is closed mid-blob', () => {
    const wb = addon();
    const threads = (): number => readdirSync('/proc/self/task').length;
    const before = threads();
    const fd = openSync(join(dir, 'blob'), 'wx');
    try {
      const handle = wb.directOpen(fd);
      if (handle === null) throw new Error('no direct I/O on the test dir');
      wb.directWrite(handle, randomBytes(3 << 20), 0);
      expect(threads()).toBe(before + 1);
      wb.directClose(handle);
      expect(threads()).toBe(before);
    } finally {
      closeSync(fd);
    }
  });

  it('gives null where a descriptor cannot be reopened for direct writes', () => {
    mkdirSync(join(dir, 'd'));
    const fd = openSync(join(dir, 'd'), 'r');
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    try {
      const before = openFds();
      expect(addon().directOpen(fd)).toBeNull();
      expect(openFds()).toBe(before);
    } finally {
      closeSync(fd);
    }
  });

  it('closes its descriptor when a handle is finished or closed', () => {
    const wb = addon();
    const fd = openSync(join(dir, 'blob'), 'wx');
    const openFds = (): number => readdirSync('/proc/self/fd').length;
    try {
      const before = openFds();
      const a = wb.directOpen(fd);
      const b = wb.directOpen(fd);
      if (a === null || b === null) throw new Error('no direct I/O on the test dir');
      expect(openFds()).toBe(before + 2);
      wb.directFinish(a);
      wb.directClose(b);
      expect(openFds()).toBe(before);
    } finally {
      closeSync(fd);
    }
  });
});
