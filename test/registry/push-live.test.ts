/**
 * Large built layers go up while they compress (api/push.ts + registry/upload-live.ts): one streamed
 * PATCH fed by the compressor, the digest in the closing PUT; after a dropped connection the upload
 * continues from the store's copy at the registry's offset. Real registry behind the fault proxy.
 */
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pushLocalImage } from '../../src/api/push.js';
import { parseReference } from '../../src/image/reference.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { RegistryClient, StaticAuth, pullImage } from '../../src/registry/index.js';
import { openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { buildImage, type TestImage } from '../layers/image-fixture.js';
import { startFaultProxy, startRegistry, tempDir, removeDir, type FaultProxy, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { noise } from './fixture.js';

describe('push of a large built layer while it compresses', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let dir: string;
  let store: Store;
  let image: TestImage;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'open' });
    proxy = await startFaultProxy({ url: reg.url });
    dir = await tempDir('push-live');
    store = await openStore(join(dir, 'store'));
    // 9.6 MB uncompressed (over the 8 MiB live threshold), ~7 MB gzipped: base64 noise plus text.
    image = await buildImage(store, dir, [{ 'big.txt': noise(7_000_000, 9).toString('base64'), 'small.txt': 'hello\n' }, { 'tiny.txt': 'tiny\n' }]);
    const size = (await store.blobs.size(image.manifest)) ?? 0;
    await store.tags.set('localhost/live:v1', { mediaType: MediaType.OciManifest, digest: image.manifest, size });
    client = new RegistryClient({ auth: new StaticAuth({}), retry: { attempts: 5, baseDelayMs: 20, maxDelayMs: 3000 } });
  });
  beforeEach(async () => {
    proxy.requests.length = 0;
    // Cold compressed cache for every test: the live path is for layers not compressed yet.
    for (const c of await store.compressed.list()) await store.compressed.delete(c.diffId, c.format);
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await reg?.stop();
    await removeDir(dir);
  });

  /** Upload requests in order; with `session`, only those of the upload whose URL holds it (layers compress two at a time). */
  const uploadLog = (session?: string): string[] =>
    proxy.requests
      .filter((r) => r.method === 'PATCH' || r.method === 'PUT' || (r.method === 'GET' && r.url.includes('/blobs/uploads/')))
      .filter((r) => !r.url.includes('/manifests/'))
      .filter((r) => session === undefined || r.url.includes(session))
      .map((r) => (r.method === 'GET' ? 'status' : `${r.method}${r.headers['content-range'] !== undefined ? ` ${String(r.headers['content-range'])}` : ''}${r.reset ? ' reset' : ''}`));

  async function pulledLayerMatches(ref: string): Promise<void> {
    const sink = new DirStore(join(dir, `pull-${Math.random().toString(16).slice(2)}`));
    const pulled = await pullImage(client, parseReference(ref), sink);
    const big = pulled.manifest.layers[0];
    expect(big?.mediaType).toBe(MediaType.OciLayerGzip);
    const tar = gunzipSync(await sink.readBytes(big!.digest));
    expect(tar.equals(await store.blobs.readBytes(image.layers[0]!.digest, { maxSize: 64 << 20 }))).toBe(true);
  }

  it('streams the big layer in one PATCH without Content-Range as it compresses; the small one goes up once ready', async () => {
    const ref = `${proxy.host}/live/app:v1`;
    await pushLocalImage(store, client, 'localhost/live:v1', ref);
    const log = uploadLog();
    // Big layer: live PATCH then PUT ?digest=. Small layer (5 KiB tar): one monolithic PUT. Config: PUT.
    expect(log.filter((l) => l === 'PATCH')).toHaveLength(1);
    expect(log.filter((l) => l.startsWith('PATCH '))).toHaveLength(0);
    await pulledLayerMatches(ref);
  });

  it('after a reset mid-stream, continues from the registry offset out of the store copy (no restart)', async () => {
    const ref = `${proxy.host}/live/reset:v1`;
    proxy.resetUpload(1_000_000);
    await pushLocalImage(store, client, 'localhost/live:v1', ref);
    const reset = proxy.requests.find((r) => r.reset);
    const session = /\/blobs\/uploads\/([^/?]+)/.exec(reset?.url ?? '')?.[1];
    expect(session).toBeDefined();
    const log = uploadLog(session);
    const first = log.indexOf('PATCH reset');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(log[first + 1]).toBe('status');
    expect(log[first + 2]).toMatch(/^PATCH \d+-\d+$/); // resumed with a range, from the store's complete copy
    expect(log[first + 3]).toBe('PUT');
    await pulledLayerMatches(ref);
  });
});
