/**
 * Disk full: the store root on a small tmpfs. A build whose COPY layer does not fit, and a pull
 * whose layer fills the disk mid-blob, must fail with exit 6 and "no space left on device" naming
 * the store, leave no partial blob, keep index.json intact and verify clean.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { busyboxContext, cli, requireCli, cliOk, mountsUnder, removeDir, tempDir, verify } from './helpers.js';

requireCli();

const SLOW = 300_000;
let work: string;
const mounted: string[] = [];

async function smallDisk(name: string, size: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tsbuild-diskfull', dir]);
  mounted.push(dir);
  return dir;
}

/** No blob is partial: every file under blobs/ hashes to its name (verify), nothing staged remains. */
async function assertClean(root: string, indexBefore: string): Promise<void> {
  expect(await readFile(join(root, 'index.json'), 'utf8')).toBe(indexBefore);
  expect((await verify(root)).output).toMatch(/no problems/);
  expect(await readdir(join(root, 'tmp'))).toEqual([]);
}

describe('disk full', () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    work = await tempDir('diskfull');
    registry = await startRegistry({ mode: 'open' });
  });
  afterEach(() => {
    // Unmount even when the test failed half-way.
    for (const dir of mounted.splice(0)) execFileSync('umount', ['-l', dir]);
  });
  afterAll(async () => {
    await registry?.stop();
    await removeDir(work);
  });

  /** A store on a `disk`-sized tmpfs holding busybox, then a build COPYing `bytes` of random data into it. */
  async function copyThatDoesNotFit(name: string, disk: string, bytes: number): Promise<{ root: string; before: string; r: Awaited<ReturnType<typeof cli>> }> {
    const root = await smallDisk(name, disk);
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(work, `${name}-bbctx`))]);
    const before = await readFile(join(root, 'index.json'), 'utf8');
    const ctx = join(work, `${name}-ctx`);
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'big.bin'), randomBytes(bytes));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:local\nCOPY big.bin /big.bin\n');
    return { root, before, r: await cli(root, ['build', '--progress', 'plain', '-t', 'big:1', ctx]) };
  }

  it('a build whose layer does not fit fails with exit 6 and leaves the store as it was', async () => {
    const { root, before, r } = await copyThatDoesNotFit('build', '8m', 6 << 20);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/no space left on device/);
    expect(r.stderr).toContain(root);
    await assertClean(root, before);
    expect(await mountsUnder(root)).toHaveLength(1); // the tmpfs itself, no overlay left behind
  }, SLOW);

  it('a large layer (hashed and written off the main thread) that does not fit fails with exit 6, store as it was', async () => {
    // 40 MiB of file data is over the off-thread threshold: the staged copy fits on 64m, its blob does not.
    const { root, before, r } = await copyThatDoesNotFit('bigcommit', '64m', 40 << 20);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/no space left on device.*\(writing a blob\)/);
    expect(r.stderr).toContain(root);
    await assertClean(root, before);
    expect(await mountsUnder(root)).toHaveLength(1);
  }, SLOW);

  it('a pull that fills the disk mid-blob fails with exit 6, no partial blob', async () => {
    const src = join(work, 'src');
    await cliOk(src, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(work, 'pull-bbctx'))]);
    const ctx = join(work, 'pullctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'big.bin'), randomBytes(12 << 20)); // incompressible: the gzip blob stays ~12 MiB
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox:local\nCOPY big.bin /big.bin\n');
    await cliOk(src, ['build', '--progress', 'plain', '-t', 'big:1', ctx]);
    await cliOk(src, ['push', '--insecure-registry', registry.host, 'big:1', `${registry.host}/full/big:1`]);

    const root = await smallDisk('pull', '8m');
    await cliOk(root, ['images']); // creates the layout
    const before = await readFile(join(root, 'index.json'), 'utf8');
    const r = await cli(root, ['pull', '--insecure-registry', registry.host, `${registry.host}/full/big:1`]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/no space left on device/);
    expect(r.stderr).toContain(root);
    await assertClean(root, before);
  }, SLOW);
});
