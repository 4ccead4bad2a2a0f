/**
 * Output files the user names (`save -o`, `build -o type=oci|docker|tar|local,dest=`, `--iidfile`,
 * `--metadata-file`, `layer create -o`): a failed command leaves no empty or partial file and an
 * existing file as it was; a bad destination fails before a build tags anything; a device or a
 * symlink is written through, never replaced.
 */
import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/execute.js';
import { writeFileOutput } from '../../src/builder/outputs.js';
import type { Digest, ImageConfig, Manifest } from '../../src/image/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { cli, removeAll, tempDir, writeTree } from './helpers.js';

const dirs: string[] = [];
let root: string;
let store: Store;
let ctx: string;
let bad: Digest;

/** A fresh, empty directory for one test's outputs. */
async function outDir(): Promise<string> {
  const dir = await tempDir('outputs-dest');
  dirs.push(dir);
  return dir;
}

function blobPath(digest: Digest): string {
  return join(root, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Flips one byte of a blob, keeping its size: reading it fails the digest check at its end. */
async function corrupt(digest: Digest): Promise<void> {
  const bytes = await readFile(blobPath(digest));
  bytes[5] = (bytes[5] ?? 0) ^ 1;
  await writeFile(blobPath(digest), bytes);
}

beforeAll(async () => {
  root = await tempDir('outputs');
  ctx = await tempDir('outputs-ctx');
  const badCtx = await tempDir('outputs-badctx');
  dirs.push(root, ctx, badCtx);
  await writeTree(ctx, { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'good\n' });
  await writeTree(badCtx, { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\nENV BAD=1\n', 'a.txt': `${'bad\n'.repeat(4096)}` });
  store = await openStore(root);
  await build({ contextDir: ctx, tags: ['docker.io/library/good:v1'] }, { store });
  const result = await build({ contextDir: badCtx, tags: ['docker.io/library/bad:v1'] }, { store });
  bad = result.manifestDigest;
  // The bad image's config and layer blobs no longer match their digests: every export of it
  // fails, some after part of the output has been written.
  const manifest = await store.blobs.readJson<Manifest>(bad);
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest);
  await corrupt(manifest.config.digest);
  for (const d of config.rootfs.diff_ids) await corrupt(d);
});
afterAll(() => removeAll(dirs));

describe('save -o', () => {
  it('a failed save leaves no file, and no temporary file beside it', async () => {
    for (const format of ['oci', 'docker']) {
      const dir = await outDir();
      const r = await cli(['--root', root, 'save', '--format', format, '-o', join(dir, 'out.tar'), 'bad:v1']);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/^error: .*corrupt/);
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('a failed save leaves a file that was there before as it was', async () => {
    for (const format of ['oci', 'docker']) {
      const dir = await outDir();
      const file = join(dir, 'out.tar');
      await writeFile(file, 'the previous archive');
      const r = await cli(['--root', root, 'save', '--format', format, '-o', file, 'bad:v1']);
      expect(r.code).not.toBe(0);
      expect(await readFile(file, 'utf8')).toBe('the previous archive');
      expect(await readdir(dir)).toEqual(['out.tar']);
    }
  });

  it('an unknown image or a missing directory is an error before anything is written', async () => {
    const dir = await outDir();
    const missing = await cli(['--root', root, 'save', '-o', join(dir, 'out.tar'), 'good:v1', 'no/such:image']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toMatch(/no\/such:image not found/);
    const noDir = await cli(['--root', root, 'save', '-o', join(dir, 'nodir', 'out.tar'), 'good:v1']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain(`error: cannot write the output ${join(dir, 'nodir', 'out.tar')}: no such directory ${join(dir, 'nodir')}`);
    expect(await readdir(dir)).toEqual([]);
  });

  it('an unknown --format is a usage error, not an OCI archive (save and parse alike)', async () => {
    const dir = await outDir();
    const save = await cli(['--root', root, 'save', '--format', 'dokker', '-o', join(dir, 'out.tar'), 'good:v1']);
    expect(save.code).toBe(2);
    expect(save.stderr).toBe('error: unknown format dokker\nhint: use --format oci or --format docker\n');
    expect(await readdir(dir)).toEqual([]);
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
    const parse = await cli(['parse', '--format', 'yaml', '-f', join(dir, 'Dockerfile')]);
    expect(parse.code).toBe(2);
    expect(parse.stderr).toBe('error: unknown format yaml\nhint: use --format json or --format buildkit\n');
  });

  it('a successful save replaces an existing file whole, keeping its permissions', async () => {
    const dir = await outDir();
    const file = join(dir, 'out.tar');
    await writeFile(file, 'x'.repeat(100_000));
    await chmod(file, 0o600);
    const r = await cli(['--root', root, 'save', '-o', file, 'good:v1']);
    expect(r.code, r.stderr).toBe(0);
    const bytes = await readFile(file);
    expect(bytes.subarray(0, 5).toString()).toBe('blobs');
    expect(bytes.length % 512).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['out.tar']);
  });

  it('writes through a symlink and into a device instead of replacing them', async () => {
    const dir = await outDir();
    await mkdir(join(dir, 'real'));
    await symlink('real/out.tar', join(dir, 'link.tar'));
    expect((await cli(['--root', root, 'save', '-o', join(dir, 'link.tar'), 'good:v1'])).code).toBe(0);
    expect(await readlink(join(dir, 'link.tar'))).toBe('real/out.tar');
    expect((await readFile(join(dir, 'real', 'out.tar'))).subarray(0, 5).toString()).toBe('blobs');
    expect(await readdir(join(dir, 'real'))).toEqual(['out.tar']);
    await writeFile(join(dir, 'real', 'out.tar'), 'old');
    expect((await cli(['--root', root, 'save', '-o', join(dir, 'link.tar'), 'good:v1'])).code).toBe(0);
    expect((await lstat(join(dir, 'link.tar'))).isSymbolicLink()).toBe(true);
    expect((await readFile(join(dir, 'real', 'out.tar'))).subarray(0, 5).toString()).toBe('blobs');
    expect((await cli(['--root', root, 'save', '-o', '/dev/null', 'good:v1'])).code).toBe(0);
    expect((await lstat('/dev/null')).isCharacterDevice()).toBe(true);
  });
});

describe('build outputs', () => {
  it('a failed -o type=oci|docker|tar export leaves no file and an existing one as it was', async () => {
    for (const type of ['oci', 'docker', 'tar'] as const) {
      const dir = await outDir();
      const fresh = join(dir, 'fresh.tar');
      await expect(writeFileOutput(store, { type, dest: fresh }, { name: 'bad:v1', manifestDigest: bad }, { stdout: process.stdout })).rejects.toThrow(/corrupt/);
      const kept = join(dir, 'kept.tar');
      await writeFile(kept, 'before');
      await expect(writeFileOutput(store, { type, dest: kept }, { name: 'bad:v1', manifestDigest: bad }, { stdout: process.stdout })).rejects.toThrow(/corrupt/);
      expect(await readFile(kept, 'utf8')).toBe('before');
      expect(await readdir(dir)).toEqual(['kept.tar']);
    }
  });

  it('a failed -o type=local export into a new directory leaves no directory', async () => {
    const dir = await outDir();
    await expect(writeFileOutput(store, { type: 'local', dest: join(dir, 'rootfs') }, { name: 'bad:v1', manifestDigest: bad }, { stdout: process.stdout })).rejects.toThrow(/corrupt/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a destination that cannot be written fails before the build tags anything', async () => {
    const dir = await outDir();
    const cases = [
      ['--iidfile', join(dir, 'nodir', 'iid')],
      ['--metadata-file', join(dir, 'nodir', 'meta.json')],
      ['-o', `type=oci,dest=${join(dir, 'nodir', 'img.tar')}`],
      ['-o', `type=docker,dest=${dir}`],
      ['-o', `type=local,dest=${join(dir, 'nodir', 'rootfs')}`],
    ];
    for (const [i, [flag, value]] of cases.entries()) {
      const r = await cli(['--root', root, 'build', '--progress', 'quiet', '-t', `dest:${i}`, flag as string, value as string, ctx]);
      expect(r.code, `${flag} ${value}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^error: cannot write the output /);
      expect(await store.tags.get(`docker.io/library/dest:${i}`)).toBeUndefined();
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('--iidfile and --metadata-file are written whole after the outputs', async () => {
    const dir = await outDir();
    const iid = join(dir, 'iid');
    await writeFile(iid, 'an old id that is much longer than the new one, which must not be left at its end');
    const meta = join(dir, 'meta.json');
    const r = await cli(['--root', root, 'build', '--progress', 'quiet', '--iidfile', iid, '--metadata-file', meta, '-o', `type=oci,dest=${join(dir, 'img.tar')}`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    const id = await readFile(iid, 'utf8');
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((JSON.parse(await readFile(meta, 'utf8')) as Record<string, string>)['containerimage.config.digest']).toBe(id);
    expect((await readdir(dir)).sort()).toEqual(['iid', 'img.tar', 'meta.json']);
  });
});

describe('layer create -o', () => {
  it('writes through a symlink; a missing directory is a clear error before the tree walk', async () => {
    const dir = await outDir();
    const from = join(dir, 'from');
    const to = join(dir, 'to');
    await writeTree(to, { 'f.txt': 'f\n' });
    await mkdir(from);
    await mkdir(join(dir, 'real'));
    await symlink('real/layer.tar', join(dir, 'link.tar'));
    const r = await cli(['layer', 'create', '--from', from, '--to', to, '-o', join(dir, 'link.tar')]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readlink(join(dir, 'link.tar'))).toBe('real/layer.tar');
    expect((await stat(join(dir, 'real', 'layer.tar'))).size).toBeGreaterThan(0);
    const noDir = await cli(['layer', 'create', '--from', from, '--to', to, '-o', join(dir, 'nodir', 'layer.tar')]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/^error: cannot write the output .*: no such directory/);
    expect((await readdir(dir)).sort()).toEqual(['from', 'link.tar', 'real', 'to']);
  });
});
