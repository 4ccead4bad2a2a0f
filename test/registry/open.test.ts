import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { sha256Digest } from '../../src/image/digest.js';
import type { Index } from '../../src/image/types.js';
import { RegistryClient, pullImage, pushImage, resolveManifest, StaticAuth, type TransferEvent } from '../../src/registry/index.js';
import { startRegistry, run, tempDir, removeDir, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { makeImage, noise, type TestImage } from './fixture.js';

describe('open registry (plain HTTP on loopback)', () => {
  let reg: RunningRegistry;
  let dir: string;
  let src: DirStore;
  let image: TestImage;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'open' });
    dir = await tempDir('reg-open');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ 'etc/hello': 'hello\n' }, { 'bin/tool': 'echo tool\n', 'usr/share/doc': 'x'.repeat(5000) }]);
    client = new RegistryClient({ auth: new StaticAuth({}) });
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
    await removeDir(dir);
  });

  it('pushes an image and pulls it back with the same manifest digest', async () => {
    const ref = parseReference(`${reg.host}/tests/app:v1`);
    const events: TransferEvent[] = [];
    const pushed = await pushImage(client, src, ref, image, { onProgress: (e) => events.push(e) });
    expect(pushed.digest).toBe(image.digest);
    expect(events.filter((e) => e.phase === 'done').map((e) => e.digest).sort()).toEqual(
      [image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)].sort(),
    );

    // Every event says how many of the image's layers are finished; the config is not counted.
    expect(events.filter((e) => e.phase === 'done').at(-1)).toMatchObject({ digest: image.manifest.config.digest, layersDone: 2, layers: 2 });

    const sink = new DirStore(join(dir, 'pull1'));
    const layersSeen: string[] = [];
    const pullEvents: TransferEvent[] = [];
    const pulled = await pullImage(client, ref, sink, { onLayer: (d) => Promise.resolve(void layersSeen.push(d.digest)), onProgress: (e) => pullEvents.push(e) });
    expect(pullEvents.filter((e) => e.phase === 'done').map((e) => e.layersDone).sort()).toEqual([1, 2]);
    expect(pullEvents.every((e) => e.layers === 2 && e.bytes <= e.total)).toBe(true);
    expect(pulled.manifestDigest).toBe(image.digest);
    expect(pulled.manifestBytes.equals(image.manifestBytes)).toBe(true);
    expect(pulled.config).toEqual(image.config);
    expect(layersSeen.sort()).toEqual(image.manifest.layers.map((l) => l.digest).sort());
    for (const l of image.manifest.layers) expect((await sink.readBytes(l.digest)).length).toBe(l.size);
    expect(await sink.has(image.digest)).toBe(true);
  });

  it('agrees with skopeo on the digest', async () => {
    const out = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/tests/app:v1`]);
    expect((JSON.parse(out) as { Digest: string }).Digest).toBe(image.digest);
  });

  it('a second push finds every blob already there and a second pull downloads nothing', async () => {
    const ref = parseReference(`${reg.host}/tests/app:v2`);
    const events: TransferEvent[] = [];
    await pushImage(client, src, ref, image, { onProgress: (e) => events.push(e) });
    expect(events.every((e) => e.phase === 'exists')).toBe(true);
    const sink = new DirStore(join(dir, 'pull1'));
    const pullEvents: TransferEvent[] = [];
    await pullImage(client, ref, sink, { onProgress: (e) => pullEvents.push(e) });
    expect(pullEvents.map((e) => e.phase)).toEqual(['exists', 'exists']);
  });

  it('mounts blobs from another repository instead of uploading them', async () => {
    const ref = parseReference(`${reg.host}/other/app:v1`);
    const events: TransferEvent[] = [];
    await pushImage(client, src, ref, image, { mountFrom: ['tests/app'], onProgress: (e) => events.push(e) });
    expect(events.map((e) => e.phase)).toEqual(['mounted', 'mounted', 'mounted']);
  });

  it('uploads large blobs in chunks and each digest once', async () => {
    const big = await makeImage(src, [{ a: noise(300_000, 1) }, { a: noise(300_000, 1) }], 'dup');
    expect(big.manifest.layers[0]?.digest).toBe(big.manifest.layers[1]?.digest);
    const ref = parseReference(`${reg.host}/tests/chunked:v1`);
    const events: TransferEvent[] = [];
    await pushImage(client, src, ref, big, { chunkSize: 64 * 1024, onProgress: (e) => events.push(e) });
    expect(events.filter((e) => e.phase === 'start')).toHaveLength(2);
    // 300 KB of noise in 64 KiB chunks: five acknowledged PATCHes.
    expect(events.filter((e) => e.phase === 'progress' && e.digest === big.manifest.layers[0]?.digest).map((e) => e.bytes).slice(0, 4)).toEqual([65536, 131072, 196608, 262144]);
    const sink = new DirStore(join(dir, 'pull-chunked'));
    expect((await pullImage(client, ref, sink)).manifestDigest).toBe(big.digest);
  });

  it('selects the platform from an index and stores the index too', async () => {
    const arm = await makeImage(src, [{ 'etc/arch': 'arm64' }], 'arm');
    await pushImage(client, src, parseReference(`${reg.host}/tests/multi@${arm.digest}`), arm);
    await pushImage(client, src, parseReference(`${reg.host}/tests/multi@${image.digest}`), image);
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { mediaType: MediaType.OciManifest, digest: arm.digest, size: arm.manifestBytes.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: MediaType.OciManifest, digest: image.digest, size: image.manifestBytes.length, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const indexBytes = Buffer.from(JSON.stringify(index));
    const res = await client.send({ host: reg.host, method: 'PUT', path: '/v2/tests/multi/manifests/latest', scopes: [], headers: { 'content-type': MediaType.OciIndex }, body: indexBytes });
    await res.body.dump();
    expect(res.statusCode).toBe(201);

    const ref = parseReference(`${reg.host}/tests/multi`);
    const top = await resolveManifest(client, ref);
    expect(top.mediaType).toBe(MediaType.OciIndex);
    expect(top.digest).toBe(sha256Digest(indexBytes));
    const sink = new DirStore(join(dir, 'pull-multi'));
    const amd = await pullImage(client, ref, sink);
    expect(amd.manifestDigest).toBe(image.digest);
    expect(amd.indexDigest).toBe(top.digest);
    expect(await sink.has(top.digest)).toBe(true);
    const armPulled = await pullImage(client, ref, sink, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(armPulled.manifestDigest).toBe(arm.digest);
    await expect(pullImage(client, ref, sink, { platform: { os: 'linux', architecture: 's390x' } })).rejects.toThrow(/no manifest for linux\/s390x \(available: linux\/arm64\/v8, linux\/amd64\)/);
  });

  it('reports a missing tag as a one-line not-found RegistryError', async () => {
    const err = await pullImage(client, parseReference(`${reg.host}/tests/app:nope`), new DirStore(join(dir, 'x'))).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY', status: 404, temporary: false, registryCodes: ['MANIFEST_UNKNOWN'] });
    expect((err as Error).message).toMatch(/^manifest 127\.0\.0\.1:\d+\/tests\/app:nope: not found/);
    expect((err as Error).message).not.toContain('\n');
  });
});
