import { execFileSync } from 'node:child_process';
import { linkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '../../src/image/digest.js';
import { upperDirChanges } from '../../src/layers/changes.js';
import { changesToTar } from '../../src/layers/tarball.js';
import { setXattr } from '../../src/util/xattr.js';
import { cleanup, collect, listTar, makeTree, tempDir } from './fixtures.js';

describe('changesToTar on a plain tree', () => {
  const dir = tempDir();
  const root = join(dir, 'root');
  let tar: Buffer;

  beforeAll(async () => {
    const long = `${'d'.repeat(60)}/${'f'.repeat(80)}`;
    makeTree(root, {
      'bin/sh': { file: '#!sh', mode: 0o755 },
      'bin/su': { file: 'su', mode: 0o4755 },
      'bin/ping': { file: 'ping', mode: 0o755 },
      'tmp': { dir: true, mode: 0o1777 },
      'etc/group': { file: 'g', mode: 0o2640, uid: 1000, gid: 42 },
      'lib/link': { symlink: '../bin/sh' },
      'dev/null': { char: [1, 3] },
      'run/fifo': { fifo: true },
      [long]: 'long',
    });
    linkSync(join(root, 'bin/sh'), join(root, 'bin/sh2'));
    setXattr(join(root, 'bin/ping'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'));
    setXattr(join(root, 'etc/group'), 'user.note', 'hi');
    setXattr(join(root, 'etc'), 'trusted.overlay.opaque', 'y'); // overlay bookkeeping: never copied
    tar = await collect(changesToTar(root, await upperDirChanges(root, []), { sourceDateEpoch: 1_000_000 }));
  });
  afterAll(() => cleanup(dir));

  it('produces the golden entry listing', async () => {
    expect(await listTar(tar)).toEqual([
      'dir bin/ 755 0:0',
      'file bin/ping 755 0:0 ping security.capability=0100000200200000000000000000000000000000',
      'file bin/sh 755 0:0 #!sh',
      'link bin/sh2 755 0:0 -> bin/sh',
      'file bin/su 4755 0:0 su',
      `dir ${'d'.repeat(60)}/ 755 0:0`,
      `file ${'d'.repeat(60)}/${'f'.repeat(80)} 644 0:0 long`,
      'dir dev/ 755 0:0',
      'char dev/null 644 0:0 1,3',
      'dir etc/ 755 0:0',
      'file etc/group 2640 1000:42 g user.note=6869',
      'dir lib/ 755 0:0',
      'symlink lib/link 777 0:0 -> ../bin/sh',
      'dir run/ 755 0:0',
      'fifo run/fifo 644 0:0',
      'dir tmp/ 1777 0:0',
    ]);
  });

  it('is readable by GNU tar with numeric ids, no names, clamped times', () => {
    const file = join(dir, 'out.tar');
    writeFileSync(file, tar);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', file], { encoding: 'utf8' });
    expect(listing).toContain('-rwsr-xr-x 0/0');
    expect(listing).toContain('1970-01-12 13:46:40 bin/su');
    expect(listing).toContain(`${'f'.repeat(80)}`);
    expect(listing).toContain('bin/sh2 link to bin/sh');
    const xattrs = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', file], { encoding: 'utf8' });
    expect(xattrs).toContain('security.capability');
  });

  it('is deterministic: same tree + SOURCE_DATE_EPOCH gives the same digest even after touching files', async () => {
    utimesSync(join(root, 'bin/sh'), new Date(), new Date());
    const again = await collect(changesToTar(root, await upperDirChanges(root, []), { sourceDateEpoch: 1_000_000 }));
    expect(sha256Digest(again)).toBe(sha256Digest(tar));
  });
});

describe('changesToTar leaves access times alone', () => {
  const dir = tempDir();
  afterAll(() => cleanup(dir));

  it('reads files and lists directories without updating their atime (a relatime mount would)', async () => {
    const root = join(dir, 'root');
    makeTree(root, { 'sub/file': 'content' });
    // atime before mtime: the first read on a relatime mount writes a new atime, unless O_NOATIME.
    const [atime, mtime] = [new Date('2020-01-01T00:00:00Z'), new Date('2021-01-01T00:00:00Z')];
    for (const p of ['sub/file', 'sub']) utimesSync(join(root, p), atime, mtime);
    const tar = await collect(changesToTar(root, await upperDirChanges(root, [])));
    expect(tar.includes(Buffer.from('content'))).toBe(true);
    for (const p of ['sub/file', 'sub']) expect(statSync(join(root, p)).atime.toISOString()).toBe(atime.toISOString());
  });
});
