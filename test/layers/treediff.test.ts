/**
 * Golden tests for `treeChanges` (two plain trees → layer) and `tsbuild layer create/apply`:
 * before/after trees → the expected tar entry listing, and lower + layer = upper.
 */
import { execFileSync } from 'node:child_process';
import { linkSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changesToTar } from '../../src/layers/tarball.js';
import { treeChanges } from '../../src/layers/treediff.js';
import { setXattr } from '../../src/util/xattr.js';
import { tsbuild } from './cli.js';
import { cleanup, collect, describeTree, listTar, makeTree, tempDir } from './fixtures.js';

const CAP = '0100000200200000000000000000000000000000';

describe('treeChanges: before/after trees → layer', () => {
  const dir = tempDir();
  const lower = join(dir, 'lower');
  const upper = join(dir, 'upper');
  let tar: Buffer;

  beforeAll(async () => {
    const common = {
      'bin/sh': { file: '#!sh', mode: 0o755 },
      'bin/keep': 'same',
      'dev/null': { char: [1, 3] as [number, number] },
      'same/deep/file': 'unchanged',
    };
    makeTree(lower, {
      ...common,
      'etc/passwd': 'root',
      'etc/gone': 'x',
      'var/cache/a': 'a',
      'var/cache/b': 'b',
      'lib/link': { symlink: '../bin/sh' },
      'sbin/su': { file: 'su', mode: 0o755 },
      'old/dir/file': 'old',
      'mod/mode': { file: 'm', mode: 0o644 },
      'mod/owner': 'o',
      'mod/touched': 'same bytes',
      'mod/type': 'was a file',
    });
    makeTree(upper, {
      ...common,
      'bin/ping': { file: 'ping', mode: 0o755 },
      'bin/tool': { file: 'tool', mode: 0o755 },
      'etc/passwd': 'root\napp',
      'var/cache/new': 'n',
      'lib/link': { symlink: 'sh' },
      'sbin/su': { file: 'su', mode: 0o4755 },
      'mod/mode': { file: 'm', mode: 0o600 },
      'mod/owner': { file: 'o', uid: 1000, gid: 1000 },
      'mod/touched': 'same bytes',
      'mod/type/': { dir: true },
      'dev/zero': { char: [1, 5] },
      'run/fifo': { fifo: true },
      'tmp': { dir: true, mode: 0o1777 },
    });
    linkSync(join(upper, 'bin/tool'), join(upper, 'bin/tool2'));
    setXattr(join(upper, 'bin/ping'), 'security.capability', Buffer.from(CAP, 'hex'));
    utimesSync(join(upper, 'mod/touched'), 12345, 12345); // a new mtime alone is not a change
    tar = await collect(changesToTar(upper, await treeChanges(lower, upper), { sourceDateEpoch: 1_000_000 }));
  });
  afterAll(() => cleanup(dir));

  it('produces the golden entry listing (whiteouts, opaque dir, hard links, xattrs, devices, setuid/sticky)', async () => {
    expect(await listTar(tar)).toEqual([
      'dir bin/ 755 0:0',
      `file bin/ping 755 0:0 ping security.capability=${CAP}`,
      'file bin/tool 755 0:0 tool',
      'link bin/tool2 755 0:0 -> bin/tool',
      'dir dev/ 755 0:0',
      'char dev/zero 644 0:0 1,5',
      'dir etc/ 755 0:0',
      'file etc/.wh.gone 0 0:0 ',
      'file etc/passwd 644 0:0 root\napp',
      'dir lib/ 755 0:0',
      'symlink lib/link 777 0:0 -> sh',
      'dir mod/ 755 0:0',
      'file mod/mode 600 0:0 m',
      'file mod/owner 644 1000:1000 o',
      'dir mod/type/ 755 0:0',
      'file .wh.old 0 0:0 ',
      'dir run/ 755 0:0',
      'fifo run/fifo 644 0:0',
      'dir sbin/ 755 0:0',
      'file sbin/su 4755 0:0 su',
      'dir tmp/ 1777 0:0',
      'dir var/ 755 0:0',
      'dir var/cache/ 755 0:0',
      'file var/cache/.wh..wh..opq 0 0:0 ',
      'file var/cache/new 644 0:0 n',
    ]);
  });

  it('reports identical trees as no changes', async () => {
    expect(await treeChanges(lower, lower)).toEqual([]);
  });

  it('tsbuild layer create + layer apply: lower + layer = upper, deterministic diffID', async () => {
    const out1 = join(dir, 'l1.tar');
    const out2 = join(dir, 'l2.tar');
    const env = { SOURCE_DATE_EPOCH: '1000000' };
    const r1 = await tsbuild(['layer', 'create', '--from', lower, '--to', upper, '-o', out1], env);
    expect(r1).toMatchObject({ code: 0 });
    expect(r1.stdout).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    utimesSync(join(upper, 'bin/keep'), 99, 99);
    utimesSync(join(upper, 'etc/passwd'), 2_000_000_000, 2_000_000_000);
    const r2 = await tsbuild(['layer', 'create', '--from', lower, '--to', upper, '-o', out2], env);
    expect(r2.stdout).toBe(r1.stdout);
    expect(readFileSync(out1).equals(readFileSync(out2))).toBe(true);
    const applied = join(dir, 'applied');
    execFileSync('cp', ['-a', lower, applied]); // keeps the device node
    const r3 = await tsbuild(['layer', 'apply', out1, applied]);
    expect(r3.code).toBe(0);
    expect(r3.stdout).toContain(r1.stdout.trim());
    expect(describeTree(applied)).toEqual(describeTree(upper));
  });

  it('tsbuild layer apply takes gzip and zstd layers, in order, with whiteouts honoured', async () => {
    const a = join(dir, 'ca');
    const b = join(dir, 'cb');
    const c = join(dir, 'cc');
    makeTree(a, { keep: 'k', 'd/x': 'x' });
    makeTree(b, { keep: 'k', 'd/x': 'x2', gone: 'g' });
    makeTree(c, { keep: 'k2', 'd/x': 'x2' });
    const base = join(dir, 'c0.tar');
    const l1 = join(dir, 'c1.tar');
    const l2 = join(dir, 'c2.tar');
    const empty = join(dir, 'cempty');
    makeTree(empty, {});
    expect((await tsbuild(['layer', 'create', '--from', empty, '--to', a, '-o', base])).code).toBe(0);
    expect((await tsbuild(['layer', 'create', '--from', a, '--to', b, '-o', l1])).code).toBe(0);
    expect((await tsbuild(['layer', 'create', '--from', b, '--to', c, '-o', l2])).code).toBe(0);
    execFileSync('gzip', ['-k', l1]);
    execFileSync('zstd', ['-q', l2]);
    const target = join(dir, 'ctarget');
    const r = await tsbuild(['layer', 'apply', base, `${l1}.gz`, `${l2}.zst`, target]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(3);
    expect(describeTree(target)).toEqual(describeTree(c));
  });

  it('a root whose every entry was replaced whiteouts each old name (no opaque marker at the root)', async () => {
    const a = join(dir, 'ra');
    const b = join(dir, 'rb');
    makeTree(a, { x: '1', y: '2' });
    makeTree(b, { z: '3' });
    const listing = await listTar(await collect(changesToTar(b, await treeChanges(a, b))));
    expect(listing).toEqual(['file .wh.x 0 0:0 ', 'file .wh.y 0 0:0 ', 'file z 644 0:0 3']);
  });

  it('layer create refuses missing flags and a missing tree with a clear error and writes nothing', async () => {
    const usage = await tsbuild(['layer', 'create', '--from', lower]);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toMatch(/usage: tsbuild layer create/);
    const out = join(dir, 'never.tar');
    const missing = await tsbuild(['layer', 'create', '--from', join(dir, 'nope'), '--to', upper, '-o', out]);
    expect(missing.code).not.toBe(0);
    expect(() => readFileSync(out)).toThrow();
    expect(missing.stderr).toContain('nope');
  });
});
