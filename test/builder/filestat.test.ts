/**
 * The context walk's stat record (src/builder/filestat.ts): the native directory listing must give
 * exactly what Node's readdirSync + lstatSync give, every file type typed right, and an identity
 * that is nanosecond-exact and textually the one BigIntStats gave (memos and COPY records written
 * before stay valid).
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, type BigIntStats } from 'node:fs';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildContext, type StatMemo } from '../../src/builder/context.js';
import { FileStat, listDir, listDirNative, listDirNode, lstatFile } from '../../src/util/filestat.js';
import { loadFsx } from '../../src/util/native.js';

let dir = '';
let server: Server | undefined;

const bigStat = (path: string): BigIntStats => lstatSync(path, { bigint: true });
const oldIdentity = (s: BigIntStats): string => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
const touch = (path: string, at: string): void => void execFileSync('touch', ['-h', '-d', at, path]);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-filestat-'));
  const all = join(dir, 'all');
  await mkdir(join(all, 'sub'), { recursive: true });
  await writeFile(join(all, 'file'), 'content\n');
  await writeFile(join(all, 'empty'), '');
  await link(join(all, 'file'), join(all, 'hardlink'));
  await symlink('file', join(all, 'link'));
  await symlink('/nowhere', join(all, 'dangling'));
  execFileSync('mkfifo', [join(all, 'fifo')]);
  execFileSync('mknod', [join(all, 'char'), 'c', '1', '3']);
  execFileSync('mknod', [join(all, 'block'), 'b', '7', '200']);
  server = createServer();
  await new Promise<void>((resolve) => server?.listen(join(all, 'socket'), resolve));
  // Byte order and UTF-16 order agree for these...
  for (const name of ['B', 'a', 'Z-é', 'ü', '日本', '10', '9', '.hidden']) await writeFile(join(all, name), name);
  // ...but not for these (U+FFFD sorts after U+1F600 by bytes, before it in UTF-16).
  const astral = join(dir, 'astral');
  await mkdir(astral);
  for (const name of ['\u{1F600}', '\uFFFD', 'x', '\uE000']) await writeFile(join(astral, name), name);
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('FileStat', () => {
  it('is built by the native addon when it is present', () => {
    expect(typeof loadFsx()?.lstatDir).toBe('function');
    expect(listDirNative(join(dir, 'all'))).toBeDefined();
  });

  it('lists a directory natively exactly as readdirSync + lstatSync do, every file type included', () => {
    const path = join(dir, 'all');
    const native = listDirNative(path);
    const node = listDirNode(path);
    expect(native?.names).toEqual(node.names);
    expect(native?.stats).toEqual(node.stats);
    expect(node.names).toEqual([...node.names].sort());
    expect(node.names).toContain('.hidden');
  });

  it('types every kind of entry and keeps device numbers', () => {
    const { names, stats } = listDir(join(dir, 'all'));
    const at = (name: string): FileStat => stats[names.indexOf(name)] as FileStat;
    const kinds = (s: FileStat): string[] =>
      (['isFile', 'isDirectory', 'isSymbolicLink', 'isFIFO', 'isCharacterDevice', 'isBlockDevice', 'isSocket'] as const).filter((k) => s[k]());
    expect(kinds(at('file'))).toEqual(['isFile']);
    expect(kinds(at('sub'))).toEqual(['isDirectory']);
    expect(kinds(at('link'))).toEqual(['isSymbolicLink']);
    expect(kinds(at('dangling'))).toEqual(['isSymbolicLink']);
    expect(kinds(at('fifo'))).toEqual(['isFIFO']);
    expect(kinds(at('char'))).toEqual(['isCharacterDevice']);
    expect(kinds(at('block'))).toEqual(['isBlockDevice']);
    expect(kinds(at('socket'))).toEqual(['isSocket']);
    expect(at('char').rdev).toBe(Number(bigStat(join(dir, 'all', 'char')).rdev));
    expect(at('block').rdev).toBe(Number(bigStat(join(dir, 'all', 'block')).rdev));
    expect(at('file').nlink).toBe(2);
    expect(`${at('file').dev}:${at('file').ino}`).toBe(`${at('hardlink').dev}:${at('hardlink').ino}`);
    expect(at('link').size).toBe(4);
  });

  it('gives the identity text and whole-millisecond mtime BigIntStats gave', () => {
    const path = join(dir, 'all');
    const { names, stats } = listDir(path);
    names.forEach((name, i) => {
      const big = bigStat(join(path, name));
      expect(stats[i]?.identity).toBe(oldIdentity(big));
      expect(stats[i]?.mtimeMs).toBe(Number(big.mtimeMs));
      expect([stats[i]?.mode, stats[i]?.uid, stats[i]?.gid, stats[i]?.size]).toEqual([Number(big.mode), Number(big.uid), Number(big.gid), Number(big.size)]);
    });
  });

  it('falls back to Node order when byte order and UTF-16 order differ', () => {
    const path = join(dir, 'astral');
    expect(listDirNative(path)).toBeUndefined();
    const { names, stats } = listDir(path);
    expect(names).toEqual(['x', '\uE000', '\uFFFD', '\u{1F600}'].sort());
    expect(stats.every((s) => s.isFile())).toBe(true);
  });

  it('reports missing and non-directory paths with the errno code Node uses', () => {
    for (const list of [listDirNative, listDirNode]) {
      expect(() => list(join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
      expect(() => list(join(dir, 'all', 'file'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
    }
  });

  it('leaves paths longer than the addon takes to Node', () => {
    const long = `${dir}/${'x/'.repeat(2100)}`;
    expect(listDirNative(long)).toBeUndefined();
    expect(() => listDir(long)).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  it('keeps timestamps to the nanosecond', async () => {
    const file = join(dir, 'ns');
    await writeFile(file, 'x');
    touch(file, '@1700000000.123456789');
    const s = await lstatFile(file);
    expect([s.mtimeSec, s.mtimeNsec]).toEqual([1700000000, 123456789]);
    expect(s.identity).toBe(oldIdentity(bigStat(file)));
    expect(s.identity.split(':')[3]).toBe('1700000000123456789');
    expect(s.mtimeMs).toBe(1700000000123);
    const native = listDirNative(dir);
    expect(native?.stats[native.names.indexOf('ns')]?.identity).toBe(s.identity);
  });

  it('tells apart times one nanosecond apart, before 1970 and at the epoch too', () => {
    const make = (sec: number, nsec: number): FileStat => new FileStat(0o100644, 0, 0, 1, 4, 0, 1, 2, sec, nsec, sec, nsec);
    expect(make(1700000000, 1).identity).not.toBe(make(1700000000, 2).identity);
    expect(make(1700000000, 1).mtimeMs).toBe(make(1700000000, 2).mtimeMs);
    expect(make(1700000000, 5).identity).toBe('1:2:4:1700000000000000005:1700000000000000005');
    expect(make(0, 5).identity).toBe('1:2:4:5:5');
    expect(make(-1, 500000000).identity).toBe('1:2:4:-500000000:-500000000');
    expect(make(-1, 500000000).mtimeMs).toBe(-500);
    // Round trip through BigIntStats' nanosecond count, negative included.
    const fake = { mode: 0o100644n, uid: 0n, gid: 0n, nlink: 1n, size: 4n, rdev: 0n, dev: 1n, ino: 2n ** 60n + 1n, mtimeNs: -500000000n, ctimeNs: 5n } as BigIntStats;
    const s = FileStat.fromBigInt(fake);
    expect([s.mtimeSec, s.mtimeNsec, s.ctimeSec, s.ctimeNsec]).toEqual([-1, 500000000, 0, 5]);
    expect(s.identity).toBe(`1:${2n ** 60n + 1n}:4:-500000000:5`);
  });

  it('a same-size edit within the same second (same mtime even) is a memo miss', async () => {
    const ctxDir = join(dir, 'ctx');
    await mkdir(ctxDir);
    const file = join(ctxDir, 'f');
    await writeFile(file, 'aaaa');
    touch(file, '@1700000000.5');
    const table = new Map<string, string>();
    const memo: StatMemo = { get: (k) => table.get(k), set: (k, v) => void table.set(k, v) };
    const context = new BuildContext(ctxDir, { memo });
    const entryOf = async (): Promise<ReturnType<BuildContext['childrenSync']>[number]> => {
      const [root] = await context.resolveSource('.');
      return context.childrenSync(root as NonNullable<typeof root>)[0] as ReturnType<BuildContext['childrenSync']>[number];
    };
    const before = await context.fileDigest(await entryOf());
    await writeFile(file, 'bbbb');
    touch(file, '@1700000000.5');
    const after = await entryOf();
    expect(after.stat.mtimeMs).toBe(1700000000500);
    expect(context.fileDigestSync(after)).not.toBe(before);
    expect(table.size).toBe(2);
  });
});
