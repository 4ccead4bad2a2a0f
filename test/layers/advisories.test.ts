/**
 * Security regression suite: one case per advisory family, named after it. Every case extracts
 * hostile layers (in order) into a target dir beside a sentinel tree, then proves the sentinel is
 * byte-identical and nothing appeared beside the target. Each case runs through `extractLayer`
 * in both modes and through `tsbuild layer apply` (the CLI, which must exit non-zero and name
 * the layer file when it refuses a layer).
 */
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractLayer } from '../../src/layers/extract.js';
import { importArchive } from '../../src/layers/import.js';
import { openStore } from '../../src/store/store.js';
import { TsbuildError } from '../../src/util/errors.js';
import { tsbuild } from './cli.js';
import { cleanup, describeTree, makeTar, makeTree, tempDir, type RawEntry } from './fixtures.js';

let dir: string;
let root: string;
let outside: string;
let sentinel: string[];

beforeEach(() => {
  dir = tempDir('tsbuild-adv-');
  root = join(dir, 'root');
  outside = join(dir, 'outside');
  makeTree(outside, { secret: 'secret', 'sub/keep': 'keep', 'sub/link': { symlink: '../secret' } });
  makeTree(root, { 'etc/hosts': 'hosts', 'etc/d/old': 'old' });
  makeTree(join(dir, 'layers'), {});
  sentinel = describeTree(outside);
});
afterEach(() => cleanup(dir));

function sentinelIntact(): void {
  expect(describeTree(outside)).toEqual(sentinel);
  expect(readdirSync(dir).sort()).toEqual(['layers', 'outside', 'root']);
}

type Layer = RawEntry[] | (() => Buffer);

interface Case {
  name: string;
  /** Built lazily: the sentinel paths differ per test. */
  layers: () => Layer[];
  /** 'ok': every layer applies; 'refused': the last layer is refused with a TsbuildError. */
  outcome: 'ok' | 'refused';
  /** What the refusal says. */
  error?: RegExp;
  /** Extra checks on the target after a successful apply (mode 'apply'). */
  after?: () => void;
}

const O = (): string => outside;

const CASES: Case[] = [
  {
    name: 'CVE-2021-29136 (umoci): `.` as a symlink to outside never replaces the root',
    layers: () => [[{ name: '.', type: 'symlink', linkname: '/' }, { name: './', type: 'symlink', linkname: '../outside' }, { name: './pwned', data: 'p' }]],
    outcome: 'ok',
    after: () => {
      expect(lstatSync(root).isDirectory()).toBe(true);
      expect(readFileSync(join(root, 'pwned'), 'utf8')).toBe('p');
    },
  },
  {
    name: 'CVE-2021-29136 (umoci): a non-directory `.` (file, fifo) is skipped',
    layers: () => [[{ name: '.', data: 'not a dir' }, { name: './', type: 'fifo' }, { name: 'ok', data: 'ok' }]],
    outcome: 'ok',
    after: () => expect(readFileSync(join(root, 'ok'), 'utf8')).toBe('ok'),
  },
  {
    name: 'CVE-2025-45582 (GNU tar): a symlink from one archive redirects a write in the next',
    layers: () => [[{ name: 'x', type: 'symlink', linkname: '../outside' }], [{ name: 'x/secret', data: 'pwned' }, { name: 'x/sub/.wh.keep' }]],
    outcome: 'ok',
    after: () => expect(readFileSync(join(root, 'outside/secret'), 'utf8')).toBe('pwned'),
  },
  {
    name: 'CVE-2018-20834 (node-tar): a hard link to an outside file, then a write to the link',
    layers: () => [[{ name: 'h', type: 'link', linkname: '../outside/secret' }, { name: 'h', data: 'pwned' }]],
    outcome: 'refused',
    error: /entry \"h\": hard link h → \.\.\/outside\/secret: target missing/,
  },
  {
    name: 'CVE-2021-32803 (node-tar): a directory, then a symlink of the same name, then a file below it',
    layers: () => [[{ name: 'a/', type: 'dir' }, { name: 'a', type: 'symlink', linkname: O() }, { name: 'a/pwned', data: 'p' }]],
    outcome: 'ok',
  },
  {
    name: 'CVE-2021-32804 (node-tar): absolute names and repeated slashes stay inside',
    layers: () => [[{ name: '/outside/secret', data: 'p' }, { name: '////outside/sub/keep', data: 'p' }, { name: '/../../../outside/x', data: 'p' }]],
    outcome: 'ok',
    after: () => expect(readFileSync(join(root, 'outside/sub/keep'), 'utf8')).toBe('p'),
  },
  {
    name: 'CVE-2021-37701 (node-tar): symlink and directory colliding through trailing slashes',
    layers: () => [[{ name: 'c/', type: 'dir' }, { name: 'c//', type: 'symlink', linkname: '../outside' }, { name: 'c/secret', data: 'p' }, { name: 'c///sub/keep', data: 'p' }]],
    outcome: 'ok',
  },
  {
    name: 'CVE-2021-37712 (node-tar): unicode/case-folding collisions between a symlink and a directory',
    layers: () => [[
      { name: 'caf\u00e9', type: 'symlink', linkname: '../outside' },
      { name: 'cafe\u0301/', type: 'dir' },
      { name: 'cafe\u0301/secret', data: 'p' },
      { name: 'CAF\u00c9/secret', data: 'p' },
      { name: 'caf\u00e9/secret', data: 'p' },
    ]],
    outcome: 'ok',
    after: () => expect(readFileSync(join(root, 'outside/secret'), 'utf8')).toBe('p'),
  },
  {
    name: 'CVE-2021-37713 (node-tar): drive-letter-ish names are plain names here',
    layers: () => [[{ name: 'c:../../outside/secret', data: 'p' }, { name: 'C:\\..\\..\\outside\\secret', data: 'p' }, { name: 'c:/../outside/sub/keep', data: 'p' }]],
    outcome: 'ok',
  },
  {
    name: 'CVE-2024-12905 (tar-fs): a hard link to a symlink that points outside, then writes through both',
    layers: () => [[
      { name: 's', type: 'symlink', linkname: join(O(), 'secret') },
      { name: 'h', type: 'link', linkname: 's' },
      { name: 'h', data: 'pwned' },
      { name: 's', data: 'pwned' },
    ]],
    outcome: 'ok',
  },
  {
    name: 'CVE-2024-12905 (tar-fs): a hard link through a symlinked parent to an outside file',
    layers: () => [[{ name: 'p', type: 'symlink', linkname: O() }, { name: 'h', type: 'link', linkname: 'p/secret' }, { name: 'h', data: 'pwned' }]],
    outcome: 'refused',
    error: /entry \"h\": hard link h → p\/secret: target missing/,
  },
  {
    name: 'CVE-2025-48387 (tar-fs): a symlink to `..` then links and files through it',
    layers: () => [[
      { name: 'up', type: 'symlink', linkname: '..' },
      { name: 'up/up/outside/secret', data: 'pwned' },
      { name: 'h', type: 'link', linkname: 'up/up/up/etc/hosts' },
      { name: 'h', data: 'changed' },
    ]],
    outcome: 'ok',
    after: () => expect(readFileSync(join(root, 'outside/secret'), 'utf8')).toBe('pwned'),
  },
  {
    name: 'CVE-2019-14271 class: whiteouts with `..` or through a symlink delete nothing outside',
    layers: () => [
      [{ name: 'sym', type: 'symlink', linkname: O() }],
      [
        { name: '../outside/.wh.secret' },
        { name: 'sym/.wh.secret' },
        { name: 'sym/sub/.wh..wh..opq' },
        { name: '../../.wh.outside' },
        { name: 'etc/.wh.d' },
      ],
    ],
    outcome: 'ok',
    after: () => expect(existsSync(join(root, 'etc/d'))).toBe(false),
  },
  {
    name: 'hard link to a symlink: the link is to the symlink itself, never its target',
    layers: () => [[{ name: 's', type: 'symlink', linkname: '../outside/secret' }, { name: 'h', type: 'link', linkname: 's' }]],
    outcome: 'ok',
    after: () => expect(lstatSync(join(root, 'h')).isSymbolicLink()).toBe(true),
  },
  {
    name: 'duplicate entries: the last wins, a symlink planted first is replaced, not followed',
    layers: () => [[{ name: 'f', type: 'symlink', linkname: join(O(), 'secret') }, { name: 'f', data: 'mine' }, { name: 'f', data: 'again' }, { name: 'f/', type: 'dir' }]],
    outcome: 'ok',
    after: () => expect(lstatSync(join(root, 'f')).isDirectory()).toBe(true),
  },
  {
    name: 'absurd sizes: a 1 TiB declared file with 3 bytes of data is refused',
    layers: () => [[{ name: 'big', data: 'abc', size: 2 ** 40 }]],
    outcome: 'refused',
    error: /entry \"big\": unexpected end of tar data/,
  },
  {
    name: 'absurd sizes: a PAX size beyond 2^53 is refused',
    layers: () => [() => paxSize('99999999999999999999999')],
    outcome: 'refused',
    error: /bad PAX size/,
  },
  {
    name: 'gzip bomb: > 1:200 expansion beyond 64 MiB is refused by default',
    layers: () => [bomb],
    outcome: 'refused',
    error: /entry \"zeros\": gzip data expands more than 200:1 past 67108864 bytes/,
  },
];

let bombBytes: Buffer | undefined;
/** 80 MiB of zeros, gzipped (~1:1000); built once. */
function bomb(): Buffer {
  bombBytes ??= gzipSync(makeTar([{ name: 'zeros', data: '\0'.repeat(80 << 20) }]), { level: 9 });
  return bombBytes;
}

/** A tar whose PAX header declares an absurd size. */
function paxSize(size: string): Buffer {
  const rec = ` size=${size}\n`;
  let len = rec.length + 2;
  if (String(len).length + rec.length !== len) len = rec.length + String(len).length;
  const body = Buffer.from(`${len}${rec}`);
  const tar = makeTar([{ name: 'PaxHeaders/big', type: 'file', data: '' }]);
  // Turn the empty first entry into a PAX 'x' header holding `body`, followed by a file entry.
  const header = Buffer.from(tar.subarray(0, 512));
  header.write('x', 156, 'ascii');
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const padded = Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
  return Buffer.concat([header, padded, makeTar([{ name: 'big', data: 'abc' }])]);
}

function bytesOf(layer: Layer): Buffer {
  return typeof layer === 'function' ? layer() : makeTar(layer);
}

describe.each(['apply', 'snapshot'] as const)('advisories via extractLayer (%s mode)', (mode) => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const layers = c.layers();
    const last = layers.length - 1;
    for (const [i, layer] of layers.entries()) {
      const run = extractLayer(Readable.from([bytesOf(layer)]), root, { mode });
      if (c.outcome === 'refused' && i === last) {
        const err: unknown = await run.catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TsbuildError);
        if (c.error !== undefined) expect((err as Error).message).toMatch(c.error);
      } else await run;
    }
    sentinelIntact();
    if (mode === 'apply' && c.outcome === 'ok') c.after?.();
  });
});

describe('advisories via `tsbuild layer apply`', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const files = c.layers().map((layer, i) => {
      const file = join(dir, 'layers', `layer${i}.tar`);
      writeFileSync(file, bytesOf(layer));
      return file;
    });
    const result = await tsbuild(['layer', 'apply', ...files, root]);
    if (c.outcome === 'ok') {
      expect(result).toMatchObject({ code: 0, stderr: '' });
      c.after?.();
    } else {
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`layer ${files[files.length - 1]}`);
      if (c.error !== undefined) expect(result.stderr).toMatch(c.error);
    }
    sentinelIntact();
  });
});

describe('decompression bombs on import', () => {
  it('importArchive refuses a gzip archive expanding > 1:200 beyond 64 MiB', async () => {
    const store = await openStore(join(dir, 'layers', 'store'));
    const err: unknown = await importArchive(store, Readable.from([bomb()])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsbuildError);
    expect((err as Error).message).toMatch(/expands more than 200:1/);
    sentinelIntact();
  });
});
