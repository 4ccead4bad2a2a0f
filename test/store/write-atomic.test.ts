/**
 * writeAtomic (src/util/fs.ts) on both of its paths: small records written synchronously, larger
 * data through the thread pool. Either way: the whole content or the old file, the mode asked
 * for, no temp file left behind on success, on abort or on a failed rename.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNC_WRITE_MAX, writeAtomic } from '../../src/util/fs.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-write-atomic-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sizes = { small: 1000, large: SYNC_WRITE_MAX + 4096 } as const;

describe.each(Object.entries(sizes))('writeAtomic, %s data', (kind, size) => {
  it('replaces the file whole, with the mode asked for, and leaves no temp file', async () => {
    const tmp = join(dir, `tmp-${kind}`);
    const target = join(dir, `target-${kind}`);
    await writeFile(target, 'old');
    const data = Buffer.alloc(size, kind === 'small' ? 's' : 'l');
    await writeAtomic(target, data, { tmpDir: tmp, mode: 0o600 });
    expect((await readFile(target)).equals(data)).toBe(true);
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    expect(await readdir(tmp)).toEqual([]);
    await writeAtomic(target, 'x'.repeat(size)); // a string, temp file beside the target
    expect(await readFile(target, 'utf8')).toBe('x'.repeat(size));
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp'))).toEqual([]);
  });

  it('keeps the old file and no temp file when aborted or when the rename fails', async () => {
    const tmp = join(dir, `tmp2-${kind}`);
    const target = join(dir, `kept-${kind}`);
    await writeFile(target, 'old');
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(writeAtomic(target, Buffer.alloc(size), { tmpDir: tmp, signal: controller.signal })).rejects.toThrow('stop');
    expect(await readFile(target, 'utf8')).toBe('old');
    await expect(writeAtomic(join(dir, 'no-such-dir', 'file'), Buffer.alloc(size), { tmpDir: tmp })).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(tmp)).toEqual([]);
  });
});
