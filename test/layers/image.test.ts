import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildManifest, encodeConfig, encodeManifest } from '../../src/image/manifest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { exportDockerArchive, exportOciArchive, importArchive } from '../../src/layers/archive.js';
import { extractLayer } from '../../src/layers/extract.js';
import { validateImage } from '../../src/layers/validate.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, describeTree, makeTar, tempDir } from './fixtures.js';
import { buildImage, type TestImage } from './image-fixture.js';

const NAME = 'localhost:5000/app:v1';

async function writeTo(path: string, fn: (out: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  const out = createWriteStream(path);
  await fn(out);
  if (!out.writableFinished) await finished(out);
}

describe('images: validate, export, import, other tools', () => {
  const dir = tempDir();
  let store: Store;
  let image: TestImage;

  beforeAll(async () => {
    store = await openStore(join(dir, 'store'));
    image = await buildImage(store, dir, [
      { 'bin/sh': { file: '#!/bin/sh', mode: 0o755 }, 'etc/os-release': 'ID=test', 'usr/lib/x': { symlink: '../../bin/sh' } },
      { 'etc/motd': 'hello', 'srv/data': { dir: true, mode: 0o750 } },
    ]);
    const size = (await store.blobs.size(image.manifest)) ?? 0;
    await store.tags.set(NAME, { mediaType: MediaType.OciManifest, digest: image.manifest, size });
  });
  afterAll(() => cleanup(dir));

  it('validates a good image', async () => {
    expect(await validateImage(store, image.manifest)).toEqual({ ok: true, problems: [] });
  });

  it('reports wrong diff_ids, wrong media types and duplicate paths', async () => {
    const dup = await store.blobs.putBytes(makeTar([{ name: 'a', data: '1' }, { name: './a', data: '2' }]));
    const cfg = encodeConfig({ ...image.config, rootfs: { type: 'layers', diff_ids: [image.layers[1]!.digest, dup.digest] } });
    await store.blobs.putBytes(cfg.bytes);
    const manifest = buildManifest(cfg.descriptor, [
      { mediaType: MediaType.OciLayerGzip, ...dup },
      image.layers[1]!,
    ]);
    const r = await validateImage(store, { manifest, config: JSON.parse(cfg.bytes.toString()) as TestImage['config'] });
    expect(r.ok).toBe(false);
    expect(r.problems.join('\n')).toMatch(/layer 0 is none but media type says gzip/);
    expect(r.problems.join('\n')).toMatch(/layer 0 has duplicate path a/);
    expect(r.problems.join('\n')).toMatch(/layer 0 diffID is .* config says/);
  });

  it('skopeo reads the store as an OCI layout', () => {
    const out = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${store.root}:${NAME}`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
    expect(out.Digest).toBe(image.manifest);
    expect(out.Layers).toEqual(image.layers.map((l) => l.digest));
  });

  it('exports an oci-archive (gzip) that umoci unpacks to the same tree as extractLayer apply', async () => {
    const tarPath = join(dir, 'image.oci.tar');
    await writeTo(tarPath, (out) => exportOciArchive(store, [{ name: 'v1', manifest: image.manifest }], out, { compression: 'gzip' }));
    const layout = join(dir, 'layout');
    mkdirSync(layout);
    execFileSync('tar', ['-xf', tarPath, '-C', layout]);
    const bundle = join(dir, 'bundle');
    execFileSync('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    const ours = join(dir, 'ours');
    for (const l of image.layers) await extractLayer(createReadStream(store.blobs.path(l.digest)), ours, { mode: 'apply' });
    expect(describeTree(join(bundle, 'rootfs'), { xattrs: false })).toEqual(describeTree(ours, { xattrs: false }));
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${tarPath}:v1`], { encoding: 'utf8' })) as { Layers: string[] };
    const gzipped = await Promise.all(image.layers.map(async (l) => (await store.compressed.get(l.digest, 'gzip'))?.digest));
    expect(inspected.Layers).toEqual(gzipped);
  });

  it('round-trips oci-archive and docker-archive through importArchive into a fresh store', async () => {
    for (const kind of ['oci', 'docker'] as const) {
      const tarPath = join(dir, `rt.${kind}.tar`);
      const refs = [{ name: NAME, manifest: image.manifest }];
      await writeTo(tarPath, (out) => (kind === 'oci' ? exportOciArchive(store, refs, out, { compression: 'zstd' }) : exportDockerArchive(store, refs, out)));
      const fresh = await openStore(join(dir, `fresh-${kind}`));
      const loaded = await importArchive(fresh, createReadStream(tarPath));
      expect(loaded).toHaveLength(1);
      expect(loaded[0]?.name).toBe(NAME);
      expect(await validateImage(fresh, loaded[0]!.manifest)).toEqual({ ok: true, problems: [] });
    }
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${join(dir, 'rt.docker.tar')}`], { encoding: 'utf8' })) as { Layers: string[] };
    expect(inspected.Layers).toHaveLength(2);
  });

  it('import rejects an archive whose blob does not match its name', async () => {
    const bad = makeTar([
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: `blobs/sha256/${'0'.repeat(64)}`, data: 'not that' },
    ]);
    const fresh = await openStore(join(dir, 'fresh-bad'));
    await expect(importArchive(fresh, Readable.from([bad]))).rejects.toMatchObject({ code: 'STORE' });
  });

  it('encodes Docker schema2 manifests on request', () => {
    const m = encodeManifest(buildManifest(image.layers[0]!, [], { flavor: 'docker' }));
    expect(JSON.parse(m.bytes.toString())).toMatchObject({ mediaType: MediaType.DockerManifest });
  });
});
