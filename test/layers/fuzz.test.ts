/**
 * Tar fuzzing (issue 9): seeded mutations of valid layer tars — header field flips with the
 * checksum fixed so the header still parses, truncation, PAX key/value garbage, huge sizes,
 * hostile names and type flags, some gzip-wrapped. Every case must either extract inside the
 * target or throw a TsbuildError: never another exception, never a write outside (sentinel).
 * A failing case prints its seed and mutation so it can be replayed.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractLayer } from '../../src/layers/extract.js';
import { TsbuildError } from '../../src/util/errors.js';
import { cleanup, describeTree, makeTar, makeTree, tempDir } from './fixtures.js';
import { seeded as prng } from '../support/seeded.js';


const LONG = `${'d'.repeat(70)}/${'n'.repeat(90)}/file`;

/** Valid layers covering every entry kind the reader and extractor handle. */
const CORPUS: Buffer[] = [
  makeTar([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' },
    { name: 'bin/sh', data: '#!/bin/sh\necho hi\n'.repeat(40), mode: 0o4755 },
    { name: 'bin/link', type: 'symlink', linkname: 'sh' },
    { name: 'bin/hard', type: 'link', linkname: 'bin/sh' },
    { name: 'etc/.wh.gone' },
    { name: 'var/', type: 'dir' },
    { name: 'var/.wh..wh..opq' },
    { name: 'run/fifo', type: 'fifo' },
    { name: 'dev/null', type: 'char', dev: [1, 3] },
  ]),
  makeTar([
    { name: LONG, data: 'long name via PAX' },
    { name: 'cap', data: 'x', xattrs: { 'security.capability': '\u0001\u0000\u0000\u0002', 'user.k': 'v' } },
    { name: 's', type: 'symlink', linkname: `../${'l'.repeat(150)}` },
  ]),
  makeTar([
    { name: 'a/b/c/d', data: 'z'.repeat(3000) },
    { name: 'a/b/x', type: 'symlink', linkname: '/a/b/c' },
    { name: 'a/b/x/e', data: 'through the link' },
    { name: 'a/.wh.b' },
  ]),
];

const HEADER_FIELDS: [number, number][] = [[0, 100], [100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [156, 1], [157, 100], [257, 6], [263, 2], [329, 8], [337, 8], [345, 155]];

function headerOffsets(tar: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    if (tar.toString('latin1', off + 257, off + 262) === 'ustar') out.push(off);
  }
  return out;
}

function fixChecksum(tar: Buffer, off: number): void {
  tar.fill(' ', off + 148, off + 156);
  let sum = 0;
  for (let i = off; i < off + 512; i++) sum += tar[i] ?? 0;
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, off + 148, 'latin1');
}

const NASTY = ['..', '../..', '/', '//', '.', '\0', '.wh.', '.wh..wh..opq', '../../outside/secret', '/outside/x', 'x/../../..', '\u00e9', '\\..\\', '77777777777', '\u0080\u00ff'];

/** One mutation; returns a label for replaying failures. */
function mutate(base: Buffer, rnd: () => number): { tar: Buffer; label: string } {
  const tar = Buffer.from(base);
  const pick = <T,>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const headers = headerOffsets(tar);
  const h = pick(headers);
  const kind = Math.floor(rnd() * 7);
  switch (kind) {
    case 0: { // random bytes in a header field, checksum fixed
      const [start, len] = pick(HEADER_FIELDS);
      const n = 1 + Math.floor(rnd() * Math.min(len, 8));
      for (let i = 0; i < n; i++) tar[h + start + Math.floor(rnd() * len)] = Math.floor(rnd() * 256);
      fixChecksum(tar, h);
      return { tar, label: `field@${start}` };
    }
    case 1: { // hostile name or link name
      const field = rnd() < 0.5 ? 0 : 157;
      tar.fill(0, h + field, h + field + 100);
      tar.write(`${pick(NASTY)}${rnd() < 0.5 ? `/${pick(NASTY)}` : ''}`.slice(0, 100), h + field, 'latin1');
      fixChecksum(tar, h);
      return { tar, label: `name@${field}` };
    }
    case 2: { // huge or malformed size (octal, base-256, garbage)
      const forms = ['77777777777\0', '99999999999\0', '-1\0', '', '1e30\0'];
      tar.fill(0, h + 124, h + 136);
      if (rnd() < 0.3) {
        tar[h + 124] = 0x80;
        for (let i = 125; i < 136; i++) tar[h + i] = Math.floor(rnd() * 256);
      } else tar.write(pick(forms), h + 124, 'latin1');
      fixChecksum(tar, h);
      return { tar, label: 'size' };
    }
    case 3: { // type flag
      tar[h + 156] = pick([0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x78, 0x67, 0x4c, 0x4b, 0x53, 0x56, 0x00, 0x7f]);
      fixChecksum(tar, h);
      return { tar, label: 'type' };
    }
    case 4: { // truncation
      const at = Math.floor(rnd() * tar.length);
      return { tar: tar.subarray(0, at), label: `truncate@${at}` };
    }
    case 5: { // PAX garbage: overwrite bytes inside a PAX record body
      const pax = headers.filter((o) => tar[o + 156] === 0x78);
      if (pax.length === 0) return { tar, label: 'pax-none' };
      const body = pick(pax) + 512;
      const garbage = pick(['99999999 path=x\n', '5 a=\n', '12 size=-5\n', '30 linkpath=../../../outside\n', 'zz', '\n\n\n', '1 \n', '18 uid=99999999999\n']);
      tar.write(garbage, body + Math.floor(rnd() * 64), 'latin1');
      return { tar, label: 'pax' };
    }
    default: { // random byte flips anywhere (checksums usually break: must fail cleanly)
      const n = 1 + Math.floor(rnd() * 16);
      for (let i = 0; i < n; i++) tar[Math.floor(rnd() * tar.length)] = Math.floor(rnd() * 256);
      return { tar, label: 'flips' };
    }
  }
}

describe('tar fuzz', () => {
  const dir = tempDir('tsbuild-fuzz-');
  const outside = join(dir, 'outside');
  const targets = join(dir, 'targets');
  let sentinel: string[];
  const CASES = Number(process.env.FUZZ_CASES ?? 3200); // FUZZ_CASES=n for a quick local run

  beforeAll(() => {
    makeTree(outside, { secret: 'secret', 'sub/keep': 'keep', 'sub/link': { symlink: '../secret' } });
    mkdirSync(targets);
    sentinel = describeTree(outside);
  });
  afterAll(() => cleanup(dir));

  it(`${CASES} seeded mutations either extract inside the target or throw a TsbuildError`, async () => {
    const failures: string[] = [];
    const outcomes = { ok: 0, refused: 0 };
    const runCase = async (seed: number): Promise<void> => {
      const rnd = prng(seed);
      const base = CORPUS[seed % CORPUS.length] as Buffer;
      const { tar, label } = mutate(base, rnd);
      const input = seed % 10 === 0 ? gzipSync(tar) : tar;
      const target = join(targets, String(seed));
      try {
        await extractLayer(Readable.from([input]), target, { mode: seed % 5 === 0 ? 'snapshot' : 'apply', limits: { maxTotalBytes: 64 << 20 } });
        outcomes.ok++;
      } catch (err) {
        if (err instanceof TsbuildError) outcomes.refused++;
        else failures.push(`seed ${seed} (${label}): ${String(err)}`);
      }
      if (seed % 50 === 0) expect(describeTree(outside), `seed ${seed} (${label})`).toEqual(sentinel);
      rmSync(target, { recursive: true, force: true });
    };
    // A few cases at once: extraction waits on the filesystem and on mknod(1), not on the CPU.
    let next = 1;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next <= CASES && failures.length <= 5) await runCase(next++);
    }));
    expect(describeTree(outside)).toEqual(sentinel);
    expect(readdirSync(dir).sort()).toEqual(['outside', 'targets']);
    expect(readdirSync(targets)).toEqual([]);
    expect(failures).toEqual([]);
    expect(outcomes.ok + outcomes.refused).toBe(CASES);
    // Both paths are exercised (a fuzzer whose every case is refused tests little).
    expect(outcomes.ok).toBeGreaterThan(CASES / 10);
    expect(outcomes.refused).toBeGreaterThan(CASES / 10);
    console.log(`tar fuzz: ${CASES} cases, ${outcomes.ok} extracted, ${outcomes.refused} refused with TsbuildError`);
  }, 600_000); // ~3,000 extractions: tens of seconds on a loaded 2-core machine
});
