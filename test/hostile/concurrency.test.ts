/**
 * Several CLI processes on one store at once: builds, a build racing a prune, pulls of the same
 * image, tag/rmi racing on index.json. Every result must be right and the store verify clean.
 */
import { readdir, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { appContext, busyboxContext, cli, requireCli, cliOk, removeDir, tempDir, verify } from './helpers.js';

requireCli();

const SLOW = 300_000;
let work: string;
let root: string;

async function tags(r: string): Promise<string[]> {
  const index = JSON.parse(await readFile(join(r, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  return index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '').sort();
}

async function ageTree(dir: string): Promise<void> {
  const when = new Date(Date.now() - 3600_000);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) await utimes(join(e.parentPath, e.name), when, when).catch(() => undefined);
}

describe('one store, many processes', () => {
  beforeAll(async () => {
    work = await tempDir('conc');
    root = join(work, 'store');
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(work, 'bbctx'))]);
  });
  afterAll(() => removeDir(work));

  it('two builds at once, same and different Dockerfiles', async () => {
    const a = await appContext(join(work, 'a'), 'a');
    const b = await appContext(join(work, 'b'), 'b');
    const same = await Promise.all([cli(root, ['build', '--progress', 'plain', '-t', 'same:1', a]), cli(root, ['build', '--progress', 'plain', '-t', 'same:2', a])]);
    for (const r of same) expect(r.code, r.stderr).toBe(0);
    const diff = await Promise.all([cli(root, ['build', '--progress', 'plain', '--no-cache', '-t', 'a:1', a]), cli(root, ['build', '--progress', 'plain', '--no-cache', '-t', 'b:1', b])]);
    for (const r of diff) expect(r.code, r.stderr).toBe(0);
    expect(await tags(root)).toEqual(expect.arrayContaining(['a:1', 'b:1', 'same:1', 'same:2'].map((t) => `docker.io/library/${t}`)));
    // Both whole images (IDs may differ: each ran its RUN if neither saw the other's cache entry).
    const layers = await Promise.all(['same:1', 'same:2', 'a:1', 'b:1'].map(async (t) => {
      const [info] = JSON.parse((await cliOk(root, ['inspect', t])).stdout) as { RootFS: { Layers: string[] } }[];
      return info?.RootFS.Layers.length;
    }));
    expect(new Set(layers).size).toBe(1);
    expect((await verify(root)).output).toMatch(/no problems/);
  }, SLOW);

  it('a build and a prune --all at once: prune waits for the build, never collects what it uses', async () => {
    const ctx = await appContext(join(work, 'p'), 'p');
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'p:1', ctx]);
    await cliOk(root, ['rmi', 'p:1']);
    // Everything old: without the lease, prune would drop the cache and the layers the next
    // (fully cached) build is about to reference.
    for (const d of ['blobs', 'snapshots']) await ageTree(join(root, d));
    for (let i = 0; i < 3; i++) {
      const build = cli(root, ['build', '--progress', 'plain', '-t', 'p:1', ctx]);
      await new Promise((r) => setTimeout(r, 300 * i));
      const prune = cli(root, ['prune', '--all']);
      const [b, p] = await Promise.all([build, prune]);
      expect(b.code, b.stderr).toBe(0);
      expect(p.code, p.stderr).toBe(0);
      expect(await tags(root)).toContain('docker.io/library/p:1');
      expect((await verify(root)).output).toMatch(/no problems/);
      await cliOk(root, ['rmi', 'p:1']);
      for (const d of ['blobs', 'snapshots']) await ageTree(join(root, d));
    }
    // And the image is whole: it runs as a base.
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'p:1', ctx]);
    const child = await appContext(join(work, 'p2'), 'q', 'p:1');
    await cliOk(root, ['build', '--progress', 'plain', '-t', 'q:1', child]);
  }, SLOW);

  it('tag and rmi racing on index.json lose no update', async () => {
    await cliOk(root, ['tag', 'busybox:local', 'keep:0']);
    const names = Array.from({ length: 8 }, (_, i) => `race:${i}`);
    for (const n of names.slice(0, 4)) await cliOk(root, ['tag', 'busybox:local', n]);
    const results = await Promise.all([
      ...names.slice(4).map((n) => cli(root, ['tag', 'busybox:local', n])),
      ...names.slice(0, 4).map((n) => cli(root, ['rmi', n])),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const now = await tags(root);
    for (const n of names.slice(4)) expect(now).toContain(`docker.io/library/${n}`);
    for (const n of names.slice(0, 4)) expect(now).not.toContain(`docker.io/library/${n}`);
    expect(now).toContain('docker.io/library/keep:0');
    expect((await verify(root)).output).toMatch(/no problems/);
  }, SLOW);
});

describe('two pulls of one image at once', () => {
  let registry: RunningRegistry;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('conc-pull');
    registry = await startRegistry({ mode: 'open' });
    const src = join(dir, 'src');
    await cliOk(src, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(dir, 'bbctx'))]);
    await cliOk(src, ['build', '--progress', 'plain', '-t', 'app:v1', await appContext(join(dir, 'ctx'))]);
    await cliOk(src, ['push', '--insecure-registry', registry.host, 'app:v1', `${registry.host}/conc/app:v1`]);
  }, SLOW);
  afterAll(async () => {
    await registry?.stop();
    await removeDir(dir);
  });

  it('both succeed with one copy of each blob', async () => {
    const dest = join(dir, 'dest');
    const ref = `${registry.host}/conc/app:v1`;
    const rs = await Promise.all([1, 2, 3].map(() => cli(dest, ['pull', '--insecure-registry', registry.host, ref])));
    for (const r of rs) expect(r.code, r.stderr).toBe(0);
    const digests = rs.map((r) => /Digest: (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1]);
    expect(new Set(digests).size).toBe(1);
    expect(await tags(dest)).toEqual([ref]);
    expect((await verify(dest)).output).toMatch(/no problems/);
  }, SLOW);
});
