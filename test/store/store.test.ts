import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { HINT_FILES_KEPT } from '../../src/store/cache.js';
import { SYNC_WRITE_MAX } from '../../src/util/fs.js';
import { verifyStore } from '../../src/store/verify.js';
import { defaultStoreRoot, openStore } from '../../src/store/store.js';
import type { Store } from '../../src/store/types.js';
import { cleanup, collect, tempDir } from '../layers/fixtures.js';
import { runChild, waitForLine } from './child.js';

let dir: string;
let store: Store;

beforeEach(async () => {
  dir = tempDir();
  store = await openStore(join(dir, 'store'));
});
afterEach(() => cleanup(dir));

async function listBlobs(s: Store): Promise<Digest[]> {
  const out: Digest[] = [];
  for await (const d of s.blobs.list()) out.push(d);
  return out;
}

describe('store layout', () => {
  it('is an OCI image layout from the start', () => {
    expect(JSON.parse(readFileSync(join(store.root, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(JSON.parse(readFileSync(join(store.root, 'index.json'), 'utf8'))).toMatchObject({ schemaVersion: 2, manifests: [] });
  });

  it('marks tmp/ as a top directory (chattr +T) on ext4, so staging spreads over block groups', () => {
    const tmp = join(store.root, 'tmp');
    const fsType = execFileSync('stat', ['-f', '-c', '%T', tmp], { encoding: 'utf8' }).trim();
    // The test runs where the store would: on ext4 (reported as ext2/ext3) the flag must be set.
    expect(fsType).toBe('ext2/ext3');
    const attrs = execFileSync('lsattr', ['-d', tmp], { encoding: 'utf8' }).split(' ')[0] ?? '';
    expect(attrs).toContain('T');
    // Existing stores are marked too: opening again keeps it, never fails.
    execFileSync('chattr', ['-T', tmp]);
    return openStore(store.root).then(() => {
      expect(execFileSync('lsattr', ['-d', tmp], { encoding: 'utf8' }).split(' ')[0]).toContain('T');
    });
  });

  it('defaultStoreRoot honours TSBUILD_ROOT, then root, then XDG', () => {
    expect(defaultStoreRoot({ TSBUILD_ROOT: '/x/y' })).toBe('/x/y');
    expect(defaultStoreRoot({})).toBe(process.getuid?.() === 0 ? '/var/lib/tsbuild' : expect.any(String));
  });
});

describe('blobs', () => {
  it('stores content-addressed, reads verified, reports size', async () => {
    const { digest, size } = await store.blobs.putBytes('hello');
    expect(digest).toBe(sha256Digest('hello'));
    expect(size).toBe(5);
    expect(await store.blobs.has(digest)).toBe(true);
    expect(await store.blobs.size(digest)).toBe(5);
    expect((await collect(await store.blobs.open(digest))).toString()).toBe('hello');
    await store.blobs.putBytes('{"a":1}');
    expect(await store.blobs.readJson(sha256Digest('{"a":1}'))).toEqual({ a: 1 });
  });

  it('rejects a digest or size mismatch and stores nothing', async () => {
    await expect(store.blobs.putBytes('hello', { expected: sha256Digest('other') })).rejects.toMatchObject({ code: 'STORE' });
    await expect(store.blobs.put(Readable.from([Buffer.from('abc')]), { expectedSize: 2 })).rejects.toMatchObject({ code: 'STORE' });
    expect(await listBlobs(store)).toEqual([]);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('takes streams below, at and above the size it gathers in memory alike, and stores nothing on failure', async () => {
    const chunked = (total: number, chunk: number, fill: number): Buffer[] => {
      const out: Buffer[] = [];
      for (let at = 0; at < total; at += chunk) out.push(Buffer.alloc(Math.min(chunk, total - at), fill + at / chunk));
      return out;
    };
    for (const total of [0, 1, SYNC_WRITE_MAX - 1, SYNC_WRITE_MAX, SYNC_WRITE_MAX + 1, 3 * SYNC_WRITE_MAX]) {
      const parts = chunked(total, 100_000, total % 7);
      const whole = Buffer.concat(parts);
      const put = await store.blobs.put(Readable.from(parts), { expected: sha256Digest(whole), expectedSize: total });
      expect(put).toEqual({ digest: sha256Digest(whole), size: total, created: true });
      expect(readFileSync(store.blobs.path(put.digest)).equals(whole)).toBe(true);
      expect(await store.blobs.put(Readable.from(parts))).toEqual({ ...put, created: false }); // again: the same blob, refreshed
    }
    const stored = await listBlobs(store);
    for (const total of [10, SYNC_WRITE_MAX + 10]) {
      const parts = chunked(total, 4096, 3);
      await expect(store.blobs.put(Readable.from(parts), { expected: sha256Digest('other') })).rejects.toThrow(/digest mismatch|expected/);
      await expect(store.blobs.put(Readable.from(parts), { expectedSize: total - 1 })).rejects.toMatchObject({ code: 'STORE' });
      const failing = (async function* () {
        yield parts[0] as Buffer;
        await Promise.resolve();
        throw new Error('source broke');
      })();
      await expect(store.blobs.put(failing)).rejects.toThrow('source broke');
    }
    expect(await listBlobs(store)).toEqual(stored);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('detects a corrupted blob on read', async () => {
    const { digest } = await store.blobs.putBytes('precious data');
    writeFileSync(store.blobs.path(digest), 'precious dat4');
    await expect(collect(await store.blobs.open(digest))).rejects.toMatchObject({ code: 'STORE' });
    await expect(store.blobs.readBytes(digest)).rejects.toMatchObject({ code: 'STORE' });
  });

  it('concurrent puts of the same content all succeed with one blob', async () => {
    const data = Buffer.alloc(1 << 20, 7);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.blobs.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]))));
    expect(new Set(results.map((r) => r.digest)).size).toBe(1);
    expect(await listBlobs(store)).toHaveLength(1);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('a writer killed with SIGKILL mid-put leaves no visible blob', async () => {
    const child = runChild(
      dir,
      `import { openStore } from '\${SRC}/store/store.ts';
       const store = await openStore(process.argv[2]);
       async function* slow() {
         for (let i = 0; ; i++) {
           yield Buffer.alloc(65536, i);
           if (i === 4) console.log('writing');
           await new Promise((r) => setTimeout(r, 5));
         }
       }
       await store.blobs.put(slow());`,
      [store.root],
    );
    await waitForLine(child, 'writing');
    const tmpRoot = join(store.root, 'tmp');
    const childDir = readdirSync(tmpRoot).find((n) => n.startsWith(`proc-${child.pid}-`));
    expect(childDir).toBeDefined();
    expect(readdirSync(join(tmpRoot, childDir ?? '')).some((n) => n.startsWith('blob-'))).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await listBlobs(store)).toEqual([]);
    expect((await verifyStore(store)).problems.join('\n')).toMatch(/leftover staging .* of dead process/);
    await openStore(store.root); // the next open sweeps the dead writer's staging dir
    expect(readdirSync(tmpRoot).filter((n) => !n.startsWith(`proc-${process.pid}-`))).toEqual([]);
    expect(await verifyStore(store)).toEqual({ ok: true, problems: [] });
  });
});

describe('lock', () => {
  it('excludes other processes and is released when the holder is SIGKILLed', async () => {
    const child = runChild(
      dir,
      `import { openStore } from '\${SRC}/store/store.ts';
       const store = await openStore(process.argv[2]);
       await store.withLock(async () => { console.log('locked'); await new Promise(() => setInterval(() => {}, 1000)); });`,
      [store.root],
    );
    await waitForLine(child, 'locked');
    await expect(store.withLock(() => Promise.resolve('got it'), { signal: AbortSignal.timeout(300) })).rejects.toMatchObject({ code: 'ABORTED' });
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(await store.withLock(() => Promise.resolve('got it'), { signal: AbortSignal.timeout(5000) })).toBe('got it');
  });

  it('is re-entrant within one async context and serialises concurrent tag writers', async () => {
    expect(await store.withLock(() => store.withLock(() => Promise.resolve(42)))).toBe(42);
    const desc = (i: number): { mediaType: string; digest: Digest; size: number } => ({ mediaType: MediaType.OciManifest, digest: sha256Digest(String(i)), size: i });
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.tags.set(`localhost:5000/app:v${i}`, desc(i))));
    expect((await store.tags.list()).map((t) => t.name).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `localhost:5000/app:v${i}`).sort());
  });
});

describe('tags', () => {
  it('sets, replaces, gets and removes names in index.json', async () => {
    const a = { mediaType: MediaType.OciManifest, digest: sha256Digest('a'), size: 1 };
    const b = { mediaType: MediaType.OciManifest, digest: sha256Digest('b'), size: 2 };
    await store.tags.set('docker.io/library/busybox:latest', a);
    await store.tags.set('docker.io/library/busybox:latest', b);
    expect(await store.tags.get('docker.io/library/busybox:latest')).toMatchObject({ digest: b.digest });
    const index = JSON.parse(readFileSync(join(store.root, 'index.json'), 'utf8')) as { manifests: { annotations: Record<string, string> }[] };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]?.annotations['org.opencontainers.image.ref.name']).toBe('docker.io/library/busybox:latest');
    expect(await store.tags.remove('docker.io/library/busybox:latest')).toBe(true);
    expect(await store.tags.remove('docker.io/library/busybox:latest')).toBe(false);
    expect(await store.tags.list()).toEqual([]);
  });
});

describe('snapshots', () => {
  const id = (prefix: string, fill: string): Digest => `sha256:${prefix}${fill.repeat(64 - prefix.length)}` as Digest;

  it('concurrent creators: first wins, all succeed, one short-named dir', async () => {
    const d = id('abc', '1');
    const paths = await Promise.all(
      Array.from({ length: 5 }, (_, i) => store.snapshots.ensure(d, (target) => Promise.resolve(writeFileSync(join(target, 'who'), String(i))))),
    );
    expect(new Set(paths).size).toBe(1);
    expect(paths[0]).toBe(join(store.root, 'snapshots', d.slice(7, 19)));
    expect(readdirSync(paths[0] as string)).toEqual(['who']);
    expect(await store.snapshots.list()).toEqual([d]);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });

  it('a 12-hex prefix collision falls back to the full name, never shares a dir', async () => {
    const a = id('deadbeefcafe', 'a');
    const b = id('deadbeefcafe', 'b');
    const pa = await store.snapshots.ensure(a, (t) => Promise.resolve(writeFileSync(join(t, 'f'), 'a')));
    const pb = await store.snapshots.ensure(b, (t) => Promise.resolve(writeFileSync(join(t, 'f'), 'b')));
    expect(pb).toBe(join(store.root, 'snapshots', b.slice(7)));
    expect(readFileSync(join(pa, 'f'), 'utf8')).toBe('a');
    expect(readFileSync(join(pb, 'f'), 'utf8')).toBe('b');
    expect((await store.snapshots.list()).sort()).toEqual([a, b].sort());
    await store.snapshots.remove(a);
    expect(await store.snapshots.has(a)).toBe(false);
    expect(await store.snapshots.has(b)).toBe(true);
  });

  it('adopts an existing dir by rename; a failed fill leaves nothing', async () => {
    const d = id('1234', '5');
    const upper = join(store.tmpDir, 'upper-x');
    await store.snapshots.ensure(id('9', '9'), () => Promise.reject(new Error('boom'))).catch(() => undefined);
    expect(await store.snapshots.list()).toEqual([]);
    writeFileSync(join(dir, 'marker'), '');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(upper);
    writeFileSync(join(upper, 'x'), 'x');
    const p = await store.snapshots.adopt(d, upper);
    expect(readFileSync(join(p, 'x'), 'utf8')).toBe('x');
    expect(readdirSync(store.tmpDir)).toEqual([]);
  });
});

describe('cache index', () => {
  it('stores opaque entries by hex key and rejects unsafe keys', async () => {
    const key = 'ab'.repeat(32);
    await store.cache.put(key, { refs: [sha256Digest('x')], data: { step: 1 }, created: '2024-01-01T00:00:00Z' });
    expect(await store.cache.get(key)).toEqual({ refs: [sha256Digest('x')], data: { step: 1 }, created: '2024-01-01T00:00:00Z' });
    expect((await store.cache.list()).map((e) => e.key)).toEqual([key]);
    await expect(store.cache.put('../../etc/passwd', { refs: [], data: null, created: '' })).rejects.toMatchObject({ code: 'INTERNAL' });
    await store.cache.delete(key);
    expect(await store.cache.get(key)).toBeUndefined();
  });

  it('persists the content memo across store instances, merging concurrent flushes', async () => {
    store.cache.memo.set('1:2:3:4:5', 'sha256:aa');
    await store.cache.memo.flush();
    const other = await openStore(store.root);
    await other.cache.memo.load();
    expect(other.cache.memo.get('1:2:3:4:5')).toBe('sha256:aa');
    other.cache.memo.set('k2', 'sha256:bb');
    store.cache.memo.set('k3', 'sha256:cc');
    await other.cache.memo.flush();
    await store.cache.memo.flush();
    const third = await openStore(store.root);
    await third.cache.memo.load();
    expect([third.cache.memo.get('k2'), third.cache.memo.get('k3')]).toEqual(['sha256:bb', 'sha256:cc']);
  });

  it('keeps one memo file per context root, shared within a process, merged across processes', async () => {
    const a = store.cache.memoFor('/ctx/a');
    expect(store.cache.memoFor('/ctx/a')).toBe(a);
    a.set('1:2:3:4:5', 'sha256:aa');
    store.cache.memoFor('/ctx/b').set('6:7:8:9:10', 'sha256:bb');
    await a.flush();
    await store.cache.memoFor('/ctx/b').flush();
    expect(readdirSync(join(store.root, 'cache', 'memo'))).toHaveLength(2);
    const other = await openStore(store.root);
    const otherA = other.cache.memoFor('/ctx/a');
    await otherA.load();
    expect([otherA.get('1:2:3:4:5'), otherA.get('6:7:8:9:10'), otherA.get('constructor')]).toEqual(['sha256:aa', undefined, undefined]);
    otherA.set('k2', 'sha256:k2');
    a.set('k3', 'sha256:k3');
    await otherA.flush();
    await a.flush();
    const third = await openStore(store.root);
    const thirdA = third.cache.memoFor('/ctx/a');
    await thirdA.load();
    expect([thirdA.get('1:2:3:4:5'), thirdA.get('k2'), thirdA.get('k3')]).toEqual(['sha256:aa', 'sha256:k2', 'sha256:k3']);
  });

  it('keeps only the most recently written per-context memo files', async () => {
    for (let i = 0; i < HINT_FILES_KEPT + 2; i++) {
      const memo = store.cache.memoFor(`/ctx/${i}`);
      memo.set(`${i}:1:1:1:1`, 'sha256:aa');
      await memo.flush();
    }
    expect(readdirSync(join(store.root, 'cache', 'memo'))).toHaveLength(HINT_FILES_KEPT);
    const last = (await openStore(store.root)).cache.memoFor(`/ctx/${HINT_FILES_KEPT + 1}`);
    await last.load();
    expect(last.get(`${HINT_FILES_KEPT + 1}:1:1:1:1`)).toBe('sha256:aa');
  });

  it('reads a torn memo file as empty', async () => {
    const memo = store.cache.memoFor('/ctx/torn');
    memo.set('1:1:1:1:1', 'sha256:aa');
    await memo.flush();
    const [name] = readdirSync(join(store.root, 'cache', 'memo'));
    writeFileSync(join(store.root, 'cache', 'memo', name as string), '{"1:1:1:1:1": "sha');
    const again = (await openStore(store.root)).cache.memoFor('/ctx/torn');
    await again.load();
    expect(again.get('1:1:1:1:1')).toBeUndefined();
  });
});
