/**
 * A blob with one bit flipped on disk (bad disk, stray write) is caught on read with an error that
 * names the digest (exit 6), and `prune --verify` reports it.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appContext, busyboxContext, cli, requireCli, cliOk, removeDir, tempDir } from './helpers.js';

requireCli();

let work: string;
let root: string;

async function flipBit(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = (b[0] ?? 0) ^ 0x10;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

describe('a corrupted blob', () => {
  beforeAll(async () => {
    work = await tempDir('corrupt');
    root = join(work, 'store');
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(work, 'bb'))]);
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'app:v1', await appContext(join(work, 'a'))]);
  }, 300_000);
  afterAll(() => removeDir(work));

  it('is detected on read with the digest named, and by verify', async () => {
    const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const app = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'docker.io/library/app:v1');
    const manifest = JSON.parse(await readFile(join(root, 'blobs', 'sha256', app?.digest.slice(7) ?? ''), 'utf8')) as { layers: { digest: string }[] };
    const layer = manifest.layers.at(-1)?.digest ?? '';
    await flipBit(join(root, 'blobs', 'sha256', layer.slice(7)), 700);

    const save = await cli(root, ['save', '-o', join(work, 'out.tar'), 'app:v1']);
    expect(save.code).toBe(6);
    expect(save.stderr).toContain(`blob ${layer} is corrupt`);
    const v = await cli(root, ['prune', '--verify']);
    expect(v.code).toBe(6);
    expect(v.stdout).toContain(`blob ${layer} is corrupt`);
  }, 300_000);
});
