/**
 * Extended attributes through the fsx addon (src/util/xattr.ts), checked against getfattr/setfattr
 * from Debian's attr package: values with any bytes, names listed, removal, a symlink's own
 * attributes never its target's, and Node-style errno errors.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getXattr, isOverlayOpaque, listXattrs, removeXattr, setXattr } from '../../src/util/xattr.js';

let dir = '';
const getfattr = (path: string, name: string): Buffer =>
  Buffer.from(execFileSync('getfattr', ['-h', '--absolute-names', '--only-values', '-n', name, path]));
const listed = (path: string): string[] =>
  execFileSync('getfattr', ['-h', '-m', '-', '--absolute-names', path], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .sort();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-xattr-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('xattrs through the fsx addon', () => {
  it('sets, reads, lists and removes values as getfattr/setfattr see them', async () => {
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    expect(listXattrs(file)).toEqual([]);
    expect(getXattr(file, 'user.none')).toBeUndefined();
    const binary = Buffer.from([0, 1, 2, 255, 0, 10, 13]);
    setXattr(file, 'user.bin', binary);
    setXattr(file, 'user.text', 'caf\u00e9'); // a string is written as its UTF-8 bytes
    setXattr(file, 'trusted.overlay.opaque', 'y');
    setXattr(file, 'user.empty', new Uint8Array(0));
    expect(getfattr(file, 'user.bin').equals(binary)).toBe(true);
    expect(getfattr(file, 'user.text').toString('utf8')).toBe('caf\u00e9');
    execFileSync('setfattr', ['-n', 'user.fromtool', '-v', '0x00ff10', file]);
    expect(getXattr(file, 'user.fromtool')).toEqual(Buffer.from([0, 255, 16]));
    expect(getXattr(file, 'user.bin')).toEqual(binary);
    expect(getXattr(file, 'user.empty')).toEqual(Buffer.alloc(0));
    expect(listXattrs(file).sort()).toEqual(listed(file));
    expect(listXattrs(file).sort()).toEqual(['trusted.overlay.opaque', 'user.bin', 'user.empty', 'user.fromtool', 'user.text']);
    expect(isOverlayOpaque(file)).toBe(true);
    removeXattr(file, 'trusted.overlay.opaque');
    expect(isOverlayOpaque(file)).toBe(false);
    expect(listed(file)).not.toContain('trusted.overlay.opaque');
    // A 4 KiB value (what one ext4 block holds next to the names) round-trips whole.
    const big = Buffer.alloc(3000, 7);
    setXattr(file, 'user.big', big);
    expect(getXattr(file, 'user.big')).toEqual(big);
  });

  it("reads and writes a symlink's own attributes, never its target's", async () => {
    const target = join(dir, 'target');
    const link = join(dir, 'link');
    await writeFile(target, 't');
    await symlink(target, link);
    setXattr(target, 'user.on-target', 'v');
    expect(listXattrs(link)).toEqual([]);
    expect(getXattr(link, 'user.on-target')).toBeUndefined();
    setXattr(link, 'trusted.on-link', 'l'); // user.* is not allowed on symlinks; trusted.* is, for root
    expect(listed(link)).toEqual(['trusted.on-link']);
    expect(listXattrs(target)).toEqual(['user.on-target']);
  });

  it('throws errno errors the way Node does, naming the path', () => {
    const missing = join(dir, 'missing');
    expect(() => listXattrs(missing)).toThrow(expect.objectContaining({ code: 'ENOENT', message: `ENOENT: No such file or directory, llistxattr '${missing}'` }));
    expect(() => getXattr(missing, 'user.a')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => setXattr(missing, 'user.a', 'v')).toThrow(`ENOENT: No such file or directory, lsetxattr '${missing}'`);
    expect(() => removeXattr(join(dir, 'file'), 'user.never-set')).toThrow(expect.objectContaining({ code: 'ENODATA' }));
    expect(() => setXattr(join(dir, 'file'), 'user.a', 42 as unknown as string)).toThrow(TypeError);
  });
});
