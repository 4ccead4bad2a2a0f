/**
 * `tsbuild prune` through the real CLI: reports what it freed, keeps what tags and cache entries
 * keep, and `--all` drops the build cache (the next build runs its steps again).
 */
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appContext, busyboxContext, cli, requireCli, cliOk, removeDir, tempDir, verify } from '../hostile/helpers.js';

requireCli();

let work: string;
let root: string;
let ctxB: string;

async function ageAll(): Promise<void> {
  const when = new Date(Date.now() - 3600_000);
  for (const d of ['blobs', 'snapshots']) {
    for (const e of await readdir(join(root, d), { withFileTypes: true, recursive: true })) await utimes(join(e.parentPath, e.name), when, when);
  }
}

function freed(stdout: string): { blobs: number; text: string } {
  const m = /Deleted (\d+) blobs, \d+ snapshots\nTotal reclaimed space: (\S+)/.exec(stdout);
  return { blobs: Number(m?.[1] ?? -1), text: m?.[2] ?? '' };
}

describe('tsbuild prune', () => {
  beforeAll(async () => {
    work = await tempDir('prune-cli');
    root = join(work, 'store');
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(work, 'bb'))]);
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'app:v1', await appContext(join(work, 'a'), 'a')]);
    ctxB = await appContext(join(work, 'b'), 'b');
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'app:v2', ctxB]);
  }, 300_000);
  afterAll(() => removeDir(work));

  it('spares fresh blobs, then frees an untagged image but keeps its cached layers', async () => {
    await cliOk(root, ['rmi', 'app:v2']);
    expect(freed((await cliOk(root, ['prune'])).stdout)).toEqual({ blobs: 0, text: '0B' }); // grace period
    await ageAll();
    const r = freed((await cliOk(root, ['prune'])).stdout);
    expect(r.blobs).toBe(2); // v2's manifest and config; its layers stay for the cache
    expect(r.text).toMatch(/^\d+(\.\d+)?[kKM]?i?B$/);
    expect(r.text).not.toBe('0B');
    expect((await verify(root)).ok).toBe(true);
    const again = await cliOk(root, ['build', '--progress', 'plain', '-t', 'app:v2', ctxB]);
    expect(`${again.stdout}${again.stderr}`.match(/CACHED/g)?.length).toBeGreaterThanOrEqual(2);
    expect((await cli(root, ['inspect', 'app:v1'])).code).toBe(0);
  }, 300_000);

  it('--all drops the cache: layers only the cache kept go, the next build runs its steps', async () => {
    await cliOk(root, ['rmi', 'app:v2']);
    await ageAll();
    const r = freed((await cliOk(root, ['prune', '--all'])).stdout);
    expect(r.blobs).toBeGreaterThanOrEqual(4); // v2's RUN + COPY layers, config, manifest
    expect(await readdir(join(root, 'cache', 'entries'))).toEqual([]);
    expect((await verify(root)).ok).toBe(true);
    const again = await cliOk(root, ['build', '--progress', 'plain', '-t', 'app:v2', ctxB]);
    expect(`${again.stdout}${again.stderr}`).not.toMatch(/RUN mkdir[^\n]*\n#\d+ CACHED/);
    // Tagged images survive --all whole: they still build on.
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'child:1', await appContext(join(work, 'c'), 'c', 'app:v1')]);
    expect((await verify(root)).ok).toBe(true);
  }, 300_000);
});
