/**
 * Layers gzipped as libdeflate members, pushed to a real registry: skopeo + umoci and buildah read
 * them to the same rootfs, and `tsbuild pull` (parallel member inflate) unpacks them to their diffIDs.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { extractLayer } from '../../src/layers/extract.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { tsbuild } from './cli.js';
import { cleanup, describeTree, tempDir } from './fixtures.js';
import { buildImage, type TestImage } from './image-fixture.js';
import { members, MiB, sample } from './members-fixture.js';

describe('libdeflate layers through a registry', () => {
  const dir = tempDir();
  let reg: RunningRegistry;
  let store: Store;
  let image: TestImage;
  let ref: string;
  /** The tree the plain layers give, applied in order. */
  let expected: ReturnType<typeof describeTree>;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'open' });
    store = await openStore(join(dir, 'store'));
    image = await buildImage(store, dir, [
      { 'data/mixed.bin': sample(2_600_000, 11).toString('latin1'), 'etc/conf': 'a=1\n', 'bin/tool': { file: '#!/bin/sh\necho hi\n', mode: 0o755 } },
      { 'data/text.txt': 'some text that compresses well\n'.repeat(80_000), 'etc/conf': 'a=2\n' },
    ]);
    const size = (await store.blobs.size(image.manifest))!;
    await store.tags.set(parseReference('mb:v1').toString(), { mediaType: MediaType.OciManifest, digest: image.manifest, size });
    const tree = join(dir, 'expected');
    for (const l of image.layers) await extractLayer(createReadStream(store.blobs.path(l.digest)), tree, { mode: 'apply' });
    expected = describeTree(tree, { xattrs: false });
    ref = `${reg.host}/tests/mb:v1`;
    const pushed = await tsbuild(['--root', store.root, 'push', '--progress', 'quiet', 'mb:v1', ref]);
    expect(pushed).toMatchObject({ code: 0, stderr: '' });
  }, 60_000);
  afterAll(async () => {
    await reg?.stop();
    cleanup(dir);
  });


  it('pushes each layer as members with the size subfield, which skopeo copies and umoci unpacks to the same rootfs', () => {
    const layout = join(dir, 'layout');
    execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:v1`]);
    const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] }).manifests[0]!.digest.slice(7)), 'utf8')) as {
      layers: { digest: string; mediaType: string }[];
    };
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerGzip, MediaType.OciLayerGzip]);
    const first = readFileSync(join(layout, 'blobs/sha256', manifest.layers[0]!.digest.slice(7)));
    expect(members(first).length).toBe(Math.ceil(image.layers[0]!.size / MiB)); // 1 MiB blocks
    execFileSync('gzip', ['-t'], { input: first });
    const bundle = join(dir, 'bundle');
    execFileSync('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    expect(describeTree(join(bundle, 'rootfs'), { xattrs: false })).toEqual(expected);
  });

  it('buildah pulls it to the same rootfs (containers/storage decompresses the members)', () => {
    // Private storage (vfs, no mounts) so the host's buildah images are not touched.
    const storage = ['--root', join(dir, 'buildah/root'), '--runroot', join(dir, 'buildah/run'), '--storage-driver', 'vfs'];
    execFileSync('buildah', [...storage, 'pull', '-q', '--tls-verify=false', `docker://${ref}`], { stdio: 'pipe' });
    const from = execFileSync('buildah', [...storage, 'from', '-q', '--pull=never', ref], { encoding: 'utf8' }).trim();
    const mnt = execFileSync('buildah', [...storage, 'mount', from], { encoding: 'utf8' }).trim();
    try {
      expect(describeTree(mnt, { xattrs: false })).toEqual(expected);
    } finally {
      execFileSync('buildah', [...storage, 'umount', from], { stdio: 'pipe' });
      execFileSync('buildah', [...storage, 'rm', from], { stdio: 'pipe' });
    }
  });

  it('tsbuild pull unpacks it into a fresh store (every layer checked against its diffID)', async () => {
    const fresh = join(dir, 'fresh');
    const pulled = await tsbuild(['--root', fresh, 'pull', '--progress', 'quiet', ref]);
    expect(pulled).toMatchObject({ code: 0, stderr: '' });
    const s = await openStore(fresh);
    for (const l of image.layers) expect(await s.snapshots.has(l.digest)).toBe(true);
    const dirs = readdirSync(join(fresh, 'snapshots'));
    expect(dirs.length).toBeGreaterThanOrEqual(2);
  });
});
