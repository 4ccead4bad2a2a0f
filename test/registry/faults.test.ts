import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { RegistryClient, StaticAuth, pullImage, pushImage, resolveManifest, type TransferEvent } from '../../src/registry/index.js';
import { freePort, startFaultProxy, startRegistry, tempDir, removeDir, type FaultProxy, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { makeImage, noise, type TestImage } from './fixture.js';

const fast = { attempts: 5, baseDelayMs: 20, maxDelayMs: 3000 };

describe('failures between client and a real registry', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let src: DirStore;
  let image: TestImage;
  let big: TestImage;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'open' });
    proxy = await startFaultProxy({ url: reg.url });
    dir = await tempDir('reg-faults');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ a: 'small layer' }, { b: noise(20_000, 2) }]);
    big = await makeImage(src, [{ blob: noise(400_000, 3) }], 'big');
    client = new RegistryClient({ auth: new StaticAuth({}), retry: fast });
    await pushImage(client, src, parseReference(`${proxy.host}/f/app:v1`), image);
  });
  beforeEach(() => {
    proxy.requests.length = 0;
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await reg?.stop();
    await removeDir(dir);
  });

  it('retries injected 500s and succeeds', async () => {
    proxy.failNext(3);
    const pulled = await pullImage(client, parseReference(`${proxy.host}/f/app:v1`), new DirStore(join(dir, 'p500')));
    expect(pulled.manifestDigest).toBe(image.digest);
    const first = proxy.requests.slice(0, 4);
    expect(first.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(new Set(first.map((r) => r.url)).size).toBe(1);
  });

  it('gives up after the retry budget with a temporary RegistryError', async () => {
    proxy.failNext(10, 503);
    const err = await pullImage(client, parseReference(`${proxy.host}/f/app:v1`), new DirStore(join(dir, 'p503'))).catch((e: unknown) => e);
    proxy.failNext(0);
    expect(err).toMatchObject({ code: 'REGISTRY', status: 503, temporary: true, registryCodes: ['UNAVAILABLE'] });
    expect(proxy.requests.filter((r) => r.injected)).toHaveLength(fast.attempts);
  });

  it('waits for Retry-After on 429', async () => {
    proxy.rateLimitNext(1);
    await pullImage(client, parseReference(`${proxy.host}/f/app:v1`), new DirStore(join(dir, 'p429')));
    const [limited, next] = proxy.requests;
    expect(limited?.status).toBe(429);
    expect((next?.at ?? 0) - (limited?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('resumes a chunked upload after the connection drops mid-PATCH', async () => {
    const chunk = 64 * 1024;
    proxy.resetUpload(10_000, 2); // the third PATCH (offset 128 KiB) dies after 10 kB
    const ref = parseReference(`${proxy.host}/f/big:v1`);
    await pushImage(client, src, ref, big, { chunkSize: chunk });
    const layer = big.manifest.layers[0];
    const uploads = proxy.requests.filter((r) => r.method === 'PATCH' || (r.method === 'GET' && r.url.includes('/blobs/uploads/')));
    const ranges = uploads.map((r) => (r.method === 'GET' ? 'status' : `${String(r.headers['content-range'])}${r.reset ? ' reset' : ''}`));
    expect(ranges.slice(0, 5)).toEqual(['0-65535', '65536-131071', '131072-196607 reset', 'status', '131072-196607']);
    expect(ranges.filter((r) => r.startsWith('0-'))).toHaveLength(1);
    const pulled = await pullImage(client, ref, new DirStore(join(dir, 'pbig')));
    expect(pulled.manifest.layers[0]?.digest).toBe(layer?.digest);
  });

  it('streams a large blob in one PATCH and resumes from the registry offset after a reset', async () => {
    const huge = await makeImage(src, [{ blob: noise(9 * 1024 * 1024, 5) }], 'huge');
    const size = huge.manifest.layers[0]?.size ?? 0;
    proxy.resetUpload(1_000_000);
    const ref = parseReference(`${proxy.host}/f/huge:v1`);
    await pushImage(client, src, ref, huge);
    const uploads = proxy.requests.filter((r) => r.method === 'PATCH' || r.method === 'PUT' || (r.method === 'GET' && r.url.includes('/blobs/uploads/')));
    const seen = uploads.map((r) => (r.method === 'GET' ? 'status' : `${r.method} ${String(r.headers['content-range'] ?? '')}${r.reset ? ' reset' : ''}`));
    // The proxy dropped the first PATCH before the registry saw a byte, so its Range is 0.
    expect(seen.slice(0, 4)).toEqual([`PATCH 0-${size - 1} reset`, 'status', `PATCH 0-${size - 1}`, 'PUT ']);
    expect((await pullImage(client, ref, new DirStore(join(dir, 'phuge2')))).manifestDigest).toBe(huge.digest);
  });

  it('refuses a corrupted blob and stores nothing for it', async () => {
    const layer = image.manifest.layers[1];
    if (!layer) throw new Error('fixture');
    proxy.corruptNextBlob(layer.digest);
    const sink = new DirStore(join(dir, 'pcorrupt'));
    const err = await pullImage(client, parseReference(`${proxy.host}/f/app:v1`), sink).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY', temporary: false });
    expect((err as Error).message).toMatch(/digest mismatch/);
    expect(await sink.has(layer.digest)).toBe(false);
    expect(await sink.has(image.digest)).toBe(false);
  });

  it('completes a push while the registry restarts under it', async () => {
    const restartable = await makeImage(src, [{ blob: noise(1_500_000, 4) }], 'restart');
    const ref = parseReference(`${reg.host}/f/restart:v1`);
    let restarting: Promise<void> | undefined;
    let killedAt = Infinity;
    let layerDoneAt = 0;
    const layer = restartable.manifest.layers[0]?.digest;
    const onProgress = (e: TransferEvent): void => {
      if (e.phase === 'progress' && e.bytes >= 128 * 1024 && restarting === undefined) {
        restarting = reg.kill().then(async () => {
          killedAt = Date.now();
          await reg.restart();
        });
      }
      if (e.phase === 'done' && e.digest === layer) layerDoneAt = Date.now();
    };
    const pushed = await pushImage(client, src, ref, restartable, { chunkSize: 128 * 1024, onProgress });
    await restarting;
    expect(killedAt).toBeLessThan(layerDoneAt);
    expect(pushed.digest).toBe(restartable.digest);
    const pulled = await pullImage(client, ref, new DirStore(join(dir, 'prestart')));
    expect(pulled.manifestDigest).toBe(restartable.digest);
  });

  it('completes a streamed (single-PATCH) push while the registry restarts under it', async () => {
    const img = await makeImage(src, [{ blob: noise(12 * 1024 * 1024, 6) }], 'restart-stream');
    const ref = parseReference(`${reg.host}/f/restart-stream:v1`);
    let restarting: Promise<void> | undefined;
    const onProgress = (e: TransferEvent): void => {
      if (e.phase === 'progress' && e.bytes >= 2 * 1024 * 1024 && restarting === undefined) restarting = reg.kill().then(() => reg.restart());
    };
    const pushed = await pushImage(client, src, ref, img, { onProgress });
    await restarting;
    expect(restarting).toBeDefined();
    expect(pushed.digest).toBe(img.digest);
    expect((await pullImage(client, ref, new DirStore(join(dir, 'prestart2')))).manifestDigest).toBe(img.digest);
  });

  it('refuses manifests over 4 MiB, declared or streamed', async () => {
    // Distribution itself will not store or serve one, so the proxy plays a registry that does.
    const huge = Buffer.from(JSON.stringify({ ...image.manifest, annotations: { pad: 'x'.repeat(4 * 1024 * 1024) } }));
    const ref = parseReference(`${proxy.host}/f/app:v1`);
    proxy.injectManifest(huge, MediaType.OciManifest);
    await expect(resolveManifest(client, ref)).rejects.toThrow(/^manifest 127\.0\.0\.1:\d+\/f\/app:v1: too large \(\d+ bytes, limit 4194304\)$/);
    proxy.injectManifest(huge, MediaType.OciManifest, { chunked: true });
    await expect(pullImage(client, ref, new DirStore(join(dir, 'phuge')))).rejects.toThrow(/too large \(more than 4194304 bytes\)$/);
  });

  it('pulls through a mirror, and falls back to the origin when the mirror is down', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const viaMirror = new RegistryClient({ auth: new StaticAuth({}), retry: { attempts: 2, baseDelayMs: 10 }, mirrors: { [dead]: [reg.host] } });
    const viaOrigin = new RegistryClient({ auth: new StaticAuth({}), retry: { attempts: 2, baseDelayMs: 10 }, mirrors: { [reg.host]: [dead] } });
    try {
      expect((await pullImage(viaMirror, parseReference(`${dead}/f/app:v1`), new DirStore(join(dir, 'pm1')))).manifestDigest).toBe(image.digest);
      expect((await pullImage(viaOrigin, parseReference(`${reg.host}/f/app:v1`), new DirStore(join(dir, 'pm2')))).manifestDigest).toBe(image.digest);
    } finally {
      await viaMirror.close();
      await viaOrigin.close();
    }
  });
});
