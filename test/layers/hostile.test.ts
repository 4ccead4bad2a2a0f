/**
 * Hostile layers: nothing may be created, changed or deleted outside the target dir. Tests are
 * named after the advisories whose attack they replay.
 */
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractLayer } from '../../src/layers/extract.js';
import { getXattr } from '../../src/util/xattr.js';
import { cleanup, describeTree, makeTar, makeTree, tempDir, type RawEntry } from './fixtures.js';

let dir: string;
let root: string;
let outside: string;
let before: string[];

beforeEach(() => {
  dir = tempDir();
  root = join(dir, 'root');
  outside = join(dir, 'outside');
  makeTree(outside, { secret: 'secret', 'sub/keep': 'keep' });
  makeTree(root, { 'etc/hosts': 'hosts' });
  before = describeTree(dir).filter((l) => !l.startsWith('root'));
});
afterEach(() => cleanup(dir));

function outsideUnchanged(): void {
  expect(describeTree(dir).filter((l) => !l.startsWith('root'))).toEqual(before);
  expect(readdirSync(dir).sort()).toEqual(['outside', 'root']);
}

/**
 * Past its first 128 files, extraction queues regular files for the I/O worker (file-writer.ts);
 * `queued` runs a case after that many harmless files so its own entries take the queued path.
 */
let queued = false;
const FILLER: RawEntry[] = Array.from({ length: 130 }, (_, i) => ({ name: `zz-filler/f${i}`, data: `${i}` }));

async function extract(entries: RawEntry[], mode: 'apply' | 'snapshot' = 'apply', limits = {}): Promise<void> {
  await extractLayer(Readable.from([makeTar(queued ? [...FILLER, ...entries] : entries)]), root, { mode, limits });
}

describe.each([
  ['apply', 'inline'],
  ['apply', 'queued'],
  ['snapshot', 'inline'],
  ['snapshot', 'queued'],
] as const)('hostile layers (%s mode, files %s)', (mode, files) => {
  beforeEach(() => {
    queued = files === 'queued';
  });
  afterEach(() => {
    queued = false;
  });
  it('clamps `..` and absolute names inside the root (path traversal)', async () => {
    await extract([{ name: '../../../../../outside/secret', data: 'pwned' }, { name: `${outside}/secret`, data: 'pwned' }], mode);
    outsideUnchanged();
    expect(readFileSync(join(root, 'outside/secret'), 'utf8')).toBe('pwned');
    expect(readFileSync(join(root, outside, 'secret'), 'utf8')).toBe('pwned');
  });

  it('GHSA-r628-mhmh-qjhw: a symlink then a directory of the same name, then a file under it', async () => {
    await extract([{ name: 'x', type: 'symlink', linkname: outside }, { name: 'x/', type: 'dir' }, { name: 'x/pwned', data: 'p' }], mode);
    outsideUnchanged();
    expect(lstatSync(join(root, 'x')).isDirectory()).toBe(true);
    expect(existsSync(join(root, 'x/pwned'))).toBe(true);
  });

  it('GHSA-9r2w-394v-53qc: a directory replaced by a symlink, then written through', async () => {
    await extract([{ name: 'a/', type: 'dir' }, { name: 'a', type: 'symlink', linkname: outside }, { name: 'a/pwned', data: 'p' }], mode);
    outsideUnchanged();
    // Resolved inside the root, like containerd's fs.RootPath.
    expect(readFileSync(join(root, outside, 'pwned'), 'utf8')).toBe('p');
  });

  it('a directory already written into, then replaced by a symlink (or whited out and re-planted), is never written through to outside', async () => {
    // The extractor remembers resolved parents; the earlier files under a/ and b/ put them in that memory.
    await extract(
      [
        { name: 'a/one', data: '1' },
        { name: 'a', type: 'symlink', linkname: outside },
        { name: 'a/pwned', data: 'p' },
        { name: 'b/one', data: '1' },
        { name: '.wh.b', type: 'file' },
        { name: 'c', type: 'symlink', linkname: '../../../outside/sub' },
        { name: 'b', type: 'symlink', linkname: 'c' },
        { name: 'b/pwned', data: 'q' },
      ],
      mode,
    );
    outsideUnchanged();
    expect(lstatSync(join(root, 'a')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(root, outside, 'pwned'), 'utf8')).toBe('p');
    expect(lstatSync(join(root, 'b')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(root, 'outside/sub/pwned'), 'utf8')).toBe('q');
  });

  it('a hard link to the file just before it, and a file under a file, see that file on disk', async () => {
    await extract([{ name: 'a', data: 'A' }, { name: 'b', type: 'link', linkname: 'a' }], mode);
    expect(readFileSync(join(root, 'b'), 'utf8')).toBe('A');
    expect(lstatSync(join(root, 'b')).ino).toBe(lstatSync(join(root, 'a')).ino);
    await expect(extract([{ name: 'f', data: 'x' }, { name: 'f/g', data: 'y' }], mode)).rejects.toThrow(/needs f to be a directory/);
    expect(readFileSync(join(root, 'f'), 'utf8')).toBe('x');
    outsideUnchanged();
  });

  it('relative symlink escaping upwards is resolved within the root', async () => {
    await extract([{ name: 'up', type: 'symlink', linkname: '../../../../outside' }, { name: 'up/secret', data: 'p' }], mode);
    outsideUnchanged();
    expect(readFileSync(join(root, 'outside/secret'), 'utf8')).toBe('p');
  });

  it('tar-fs CVE-2024-12905: hard link to a symlink to outside, then a file written to the link', async () => {
    await extract(
      [
        { name: 's', type: 'symlink', linkname: join(outside, 'secret') },
        { name: 'h', type: 'link', linkname: 's' },
        { name: 'h', data: 'overwrite' },
        { name: 's', data: 'overwrite too' },
      ],
      mode,
    );
    outsideUnchanged();
    expect(readFileSync(join(root, 'h'), 'utf8')).toBe('overwrite');
  });

  it('tar-fs CVE-2024-12905: hard links to outside paths (direct or via a symlinked parent) are refused', async () => {
    await expect(extract([{ name: 'h', type: 'link', linkname: '../outside/secret' }], mode)).rejects.toMatchObject({ code: 'LAYER' });
    await expect(extract([{ name: 'd', type: 'symlink', linkname: outside }, { name: 'h', type: 'link', linkname: 'd/secret' }], mode)).rejects.toMatchObject({ code: 'LAYER' });
    outsideUnchanged();
  });

  it('CVE-2021-29136: a non-directory `.` entry never replaces the root', async () => {
    await extract([{ name: '.', type: 'symlink', linkname: outside }, { name: './', type: 'symlink', linkname: '/' }, { name: 'f', data: 'x' }], mode);
    outsideUnchanged();
    expect(lstatSync(root).isDirectory()).toBe(true);
    expect(readFileSync(join(root, 'f'), 'utf8')).toBe('x');
  });

  it('whiteouts with `..`, or through a symlink, delete nothing outside', async () => {
    await expect(extract([{ name: '.wh...' }], mode)).rejects.toMatchObject({ code: 'LAYER' });
    const attempts: RawEntry[][] = [
      [{ name: '../.wh.outside' }],
      [{ name: '../../outside/.wh.secret' }],
      [{ name: 's', type: 'symlink', linkname: outside }, { name: 's/.wh.secret' }, { name: 's/.wh..wh..opq' }],
    ];
    for (const entries of attempts) {
      // Either refused (LAYER) or contained: both are fine, escaping is not.
      await extract(entries, mode).catch((err: unknown) => expect(err).toMatchObject({ code: 'LAYER' }));
      outsideUnchanged();
    }
  });

  it('a link target stepping into a missing dir and back out (`missing/../evil`) still resolves `evil` inside the root', async () => {
    // Found by red-teaming: past a missing component the rest was taken as written, so a `..` back
    // into real dirs skipped the lookup of `evil` (a symlink to outside) and the kernel followed it.
    await extract(
      [
        { name: 'evil', type: 'symlink', linkname: outside },
        { name: 'l', type: 'symlink', linkname: 'nonexist/../evil/secret' },
        { name: 'stolen', type: 'link', linkname: 'l' },
        { name: 'w', type: 'symlink', linkname: 'nonexist/../evil/sub' },
        { name: 'w/.wh.keep' },
        { name: 'w/.wh..wh..opq' },
      ],
      mode,
    ).catch((err: unknown) => expect(err).toMatchObject({ code: 'LAYER' }));
    outsideUnchanged();
    expect(lstatSync(join(outside, 'secret')).nlink).toBe(1);
  });

  it('a chain of long link targets is refused instead of costing 200,000 lookups per entry', async () => {
    // 254 links, each target `d/../` x 800 then the next link: ~200,000 lstat calls per lookup
    // before; lexical cleaning (containerd's RootPath) and a budget per lookup bound it now.
    const chain: RawEntry[] = [{ name: 'd/', type: 'dir' }];
    for (let i = 0; i < 254; i++) chain.push({ name: `s${i}`, type: 'symlink', linkname: `${'d/../'.repeat(800)}s${i + 1}` });
    const entries = [...chain, ...Array.from({ length: 200 }, (_, i): RawEntry => ({ name: `s0/.wh.z${i}` }))];
    // ~100 s of CPU before (every entry re-walked the chain); now the first lookup runs out of budget.
    await expect(extract(entries, mode)).rejects.toThrow(/too many path components resolving s0/);
    outsideUnchanged();
  });

  it('a lookup that would take more than 8192 components is refused', async () => {
    // l<i> -> A/ln<i> -> /l<i+1>, A 240 real dirs deep: 40 hops of 241 lookups each.
    const A = Array.from({ length: 240 }, () => 'a').join('/');
    const entries: RawEntry[] = [{ name: `${A}/`, type: 'dir' }];
    for (let i = 0; i < 40; i++) {
      entries.push({ name: `${A}/ln${i}`, type: 'symlink', linkname: `/l${i + 1}` }, { name: `l${i}`, type: 'symlink', linkname: `${A}/ln${i}` });
    }
    await expect(extract([...entries, { name: 'l0/x', data: 'x' }], mode)).rejects.toThrow(/too many path components/);
    outsideUnchanged();
  });

  it('a symlink planted over a file is replaced, not written through', async () => {
    await extract([{ name: 'f', type: 'symlink', linkname: join(outside, 'secret') }, { name: 'f', data: 'new' }], mode);
    outsideUnchanged();
    expect(readFileSync(join(root, 'f'), 'utf8')).toBe('new');
  });

  it('duplicate entries: the last one wins, replacing a directory if needed', async () => {
    await extract([{ name: 'a', data: '1' }, { name: 'a', data: '2' }, { name: 'd/', type: 'dir' }, { name: 'd/x', data: 'x' }, { name: 'd', data: 'file now' }], mode);
    expect(readFileSync(join(root, 'a'), 'utf8')).toBe('2');
    expect(readFileSync(join(root, 'd'), 'utf8')).toBe('file now');
  });

  it('symlink loops fail cleanly', async () => {
    await expect(extract([{ name: 'l', type: 'symlink', linkname: 'l' }, { name: 'l/x', data: 'x' }], mode)).rejects.toMatchObject({ code: 'LAYER' });
    outsideUnchanged();
  });

  it('device nodes land inside the root', async () => {
    await extract([{ name: '../dev/evil', type: 'char', dev: [1, 3] }], mode);
    outsideUnchanged();
    expect(lstatSync(join(root, 'dev/evil')).isCharacterDevice()).toBe(true);
  });

  it('never sets overlay xattrs from the tar (a forged opaque marker)', async () => {
    await extract([{ name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.opaque': 'y', 'user.ok': '1' } }], mode);
    expect(getXattr(join(root, 'd'), 'trusted.overlay.opaque')).toBeUndefined();
    expect(getXattr(join(root, 'd'), 'user.ok')?.toString()).toBe('1');
  });

  it('absurd declared sizes: truncated data fails; limits on bytes, entries and ratio hold', async () => {
    await expect(extract([{ name: 'big', data: 'abc', size: 2 ** 40 }], mode)).rejects.toMatchObject({ code: 'LAYER' });
    await expect(extract([{ name: 'a', data: 'x'.repeat(4096) }], mode, { maxTotalBytes: 2048 })).rejects.toMatchObject({ code: 'LAYER' });
    await expect(extract([{ name: 'a' }, { name: 'b' }, { name: 'c' }], mode, { maxEntries: 2 })).rejects.toMatchObject({ code: 'LAYER' });
    const bomb = gzipSync(makeTar([{ name: 'zeros', data: '\0'.repeat(8 << 20) }]));
    await expect(extractLayer(Readable.from([bomb]), root, { mode, limits: { maxRatio: 100, ratioAfter: 1 << 20 } })).rejects.toMatchObject({ code: 'LAYER' });
    outsideUnchanged();
  });
});

describe('across layers (apply mode)', () => {
  it('CVE-2025-45582: a symlink planted by one layer cannot redirect the next', async () => {
    await extract([{ name: 'x', type: 'symlink', linkname: '../../../outside' }]);
    await extract([{ name: 'x/secret', data: 'pwned' }, { name: 'x/sub/.wh.keep' }, { name: 'x/.wh..wh..opq' }]);
    outsideUnchanged();
    expect(readFileSync(join(root, 'outside/secret'), 'utf8')).toBe('pwned');
  });

  it('whiteouts do not delete what the same layer created, but do delete lower content', async () => {
    await extract([{ name: 'keep' }, { name: 'gone' }, { name: 'd/', type: 'dir' }, { name: 'd/old' }]);
    await extract([{ name: 'd/', type: 'dir' }, { name: 'd/.wh..wh..opq' }, { name: 'd/new' }, { name: '.wh.gone' }, { name: 'fresh' }, { name: '.wh.fresh' }]);
    expect(readdirSync(root).sort()).toEqual(['d', 'etc', 'fresh', 'keep']);
    expect(readdirSync(join(root, 'd'))).toEqual(['new']);
  });
});
