import { once } from 'node:events';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/mediatypes.js';
import { prune } from '../../src/store/gc.js';
import { asStoreNoSpace, isNoSpace } from '../../src/store/nospace.js';
import { openStore } from '../../src/store/store.js';
import { sweepTmp } from '../../src/store/tmp.js';
import type { Store } from '../../src/store/types.js';
import { verifyStore } from '../../src/store/verify.js';
import { TsbuildError } from '../../src/util/errors.js';
import { cleanup, tempDir } from '../layers/fixtures.js';
import { buildImage, type TestImage } from '../layers/image-fixture.js';
import { runChild, waitForLine } from './child.js';

let dir: string;
let store: Store;
let image: TestImage;

beforeEach(async () => {
  dir = tempDir();
  store = await openStore(join(dir, 'store'));
  image = await buildImage(store, dir, [{ a: 'a' }, { b: 'b' }]);
});
afterEach(() => cleanup(dir));

const enospc = (path?: string): Error => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC', ...(path !== undefined ? { path } : {}) });

describe('GC lease', () => {
  it('prune waits while another process holds a lease and runs once it is gone', async () => {
    const child = runChild(
      dir,
      `import { openStore } from '\${SRC}/store/store.ts';
       const store = await openStore(process.argv[2]);
       await store.withLease(async () => { console.log('leased'); await new Promise(() => setInterval(() => {}, 1000)); });`,
      [store.root],
    );
    await waitForLine(child, 'leased');
    await expect(prune(store, { gracePeriodMs: 0, signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await store.blobs.has(image.manifest)).toBe(true); // nothing collected while leased
    child.kill('SIGKILL');
    await once(child, 'exit');
    const r = await prune(store, { gracePeriodMs: 0, signal: AbortSignal.timeout(10_000) });
    expect(r.removedBlobs).toBe(4); // untagged: 2 layers, config, manifest
  });

  it('leases are shared between builds, re-entrant, and prune inside one fails instead of deadlocking', async () => {
    const both = await Promise.all([store.withLease(() => store.withLease(() => Promise.resolve(1))), store.withLease(() => Promise.resolve(2))]);
    expect(both).toEqual([1, 2]);
    await expect(store.withLease(() => prune(store))).rejects.toMatchObject({ code: 'STORE' });
  });
});

describe('verifyStore', () => {
  it('reports a tag whose layer is missing, an unclaimed snapshot dir, and a cache entry with a missing blob', async () => {
    await store.tags.set('localhost/app:v1', { mediaType: MediaType.OciManifest, digest: image.manifest, size: (await store.blobs.size(image.manifest)) ?? 0 });
    expect(await verifyStore(store)).toEqual({ ok: true, problems: [] });
    await store.blobs.delete(image.layers[1]!.digest);
    mkdirSync(join(store.root, 'snapshots', 'abcdefabcdef'));
    await store.cache.put('cd'.repeat(32), { refs: [image.layers[1]!.digest], data: {}, created: '' });
    const text = (await verifyStore(store)).problems.join('\n');
    expect(text).toContain(`references missing blob ${image.layers[1]!.digest}`);
    expect(text).toMatch(/snapshot abcdefabcdef has no owner marker/);
    expect(text).toMatch(/cache entry cdcdcdcdcdcd references missing blob/);
  });

  it('reports an unparsable index.json', async () => {
    writeFileSync(join(store.root, 'index.json'), '{"manifests": [');
    expect((await verifyStore(store)).problems.join('\n')).toMatch(/index\.json is corrupt/);
  });
});

describe('staging sweep', () => {
  it('removes dead writers\u2019 dirs, keeps live ones and dead sandbox work roots unless told how to clean them', async () => {
    const tmp = join(store.root, 'tmp');
    mkdirSync(join(tmp, 'proc-999999-aa', 'blob-999999-bb'), { recursive: true });
    mkdirSync(join(tmp, 'proc-999998-aa', 'run-999998-cc'), { recursive: true });
    writeFileSync(join(tmp, 'proc-999998-aa', 'run-999998-cc', 'sandbox.state'), 'launcher 999997 1\n');
    expect(await sweepTmp(store.root)).toBe(1);
    expect(readdirSync(tmp).sort()).toEqual(['proc-999998-aa', `${store.tmpDir.split('/').pop() ?? ''}`].sort());
    const cleaned: string[] = [];
    expect(await sweepTmp(store.root, { onDead: (d) => Promise.resolve(void cleaned.push(d)) })).toBe(1);
    expect(cleaned).toEqual([join(tmp, 'proc-999998-aa')]);
    expect(readdirSync(tmp)).toEqual([store.tmpDir.split('/').pop()]);
  });
});

describe('disk full', () => {
  it('recognises ENOSPC through a cause chain and names the store', () => {
    expect(isNoSpace(new TsbuildError('LAYER', 'x', { cause: enospc() }))).toBe(true);
    expect(isNoSpace(new Error('other'))).toBe(false);
    const inside = asStoreNoSpace(store.root, enospc(join(store.tmpDir, 'copy-x', 'f')));
    expect(inside).toBeInstanceOf(TsbuildError);
    expect((inside as TsbuildError).code).toBe('STORE');
    expect((inside as TsbuildError).message).toContain(`no space left on device in store ${store.root}`);
    const outside = enospc('/elsewhere/out.tar');
    expect(asStoreNoSpace(store.root, outside)).toBe(outside);
  });

  it('a blob put that hits ENOSPC fails as STORE and leaves nothing staged', async () => {
    async function* failing(): AsyncIterable<Uint8Array> {
      yield Buffer.alloc(1000, 1);
      await new Promise((r) => setImmediate(r));
      throw enospc();
    }
    const err = await store.blobs.put(failing()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TsbuildError);
    expect((err as TsbuildError).code).toBe('STORE');
    expect((err as TsbuildError).message).toMatch(/no space left on device in store/);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });
});
