/** analyzeImage, `tsbuild diff` and `tsbuild layer ls` on images built by the builder. */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeImage, type ImageAnalysis } from '../../src/layers/analyze.js';
import type { Digest } from '../../src/image/digest.js';
import type { Store } from '../../src/store/types.js';
import { buildBusybox, makeContext, newStore, runBuild } from '../builder/helpers.js';
import { tsbuild } from './cli.js';

const DOCKERFILE = `FROM busybox:local
RUN dd if=/dev/zero of=/big bs=1024 count=100 && echo a > /keep && mkdir -p /d && echo 1 > /d/one && echo 2 > /d/two
RUN rm /big && echo bb > /keep && rm -r /d && mkdir /d && echo 3 > /d/three
`;

describe('image analysis', () => {
  let store: Store;
  let root: string;
  let ctx: string;
  let manifest: Digest;
  let analysis: ImageAnalysis;

  beforeAll(async () => {
    ({ store, root } = await newStore());
    await buildBusybox(store);
    ctx = await makeContext({ Dockerfile: DOCKERFILE });
    const { result } = await runBuild(store, { contextDir: ctx, tags: ['docker.io/library/wasteful:1'] });
    manifest = result.manifestDigest;
    analysis = await analyzeImage(store, manifest);
  }, 120_000);
  afterAll(async () => {
    await rm(ctx, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  });

  it('lists per layer what was added, modified and deleted, with sizes', () => {
    const n = analysis.layers.length;
    const adding = analysis.layers[n - 2]!;
    const deleting = analysis.layers[n - 1]!;
    expect(adding.createdBy).toContain('dd if=/dev/zero');
    expect(adding.added).toEqual(expect.arrayContaining([{ path: 'big', size: 102_400 }, { path: 'keep', size: 2 }, { path: 'd/one', size: 2 }]));
    expect(deleting.deleted).toEqual(expect.arrayContaining([{ path: 'big', size: 102_400 }]));
    expect(deleting.modified).toEqual(expect.arrayContaining([{ path: 'keep', size: 3 }]));
    // /d was removed and recreated: its old children are gone, one way (opaque) or another.
    const goneFromD = deleting.deleted.filter((d) => d.path.startsWith('d'));
    expect(goneFromD.reduce((s, d) => s + d.size, 0)).toBe(4);
    expect(deleting.added.concat(deleting.modified).map((f) => f.path)).toContain('d/three');
  });

  it('charges wasted bytes to the layer holding them and totals them', () => {
    const n = analysis.layers.length;
    expect(analysis.layers[n - 2]!.wasted).toBe(102_400 + 2 + 4);
    expect(analysis.layers[n - 1]!.wasted).toBe(0);
    expect(analysis.totalWasted).toBe(analysis.layers.reduce((s, l) => s + l.wasted, 0));
    expect(analysis.totalWasted).toBeGreaterThanOrEqual(102_406);
    expect(analysis.totalSize).toBe(analysis.layers.reduce((s, l) => s + l.size, 0));
  });

  it('tsbuild diff prints the same, as text, as JSON and for one layer', async () => {
    const n = analysis.layers.length;
    const json = await tsbuild(['diff', '--root', root, 'wasteful:1', '--format', 'json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(analysis)));
    const text = await tsbuild(['diff', '--root', root, 'wasteful:1', '--layer', String(n - 1)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^Layer \d+ sha256:/);
    expect(text.stdout).toMatch(/ D .*100\.0?KiB|D .* big/);
    expect(text.stdout).toContain(' M ');
    expect(text.stdout).toMatch(/Total: .* wasted\n$/);
    const bad = await tsbuild(['diff', '--root', root, 'wasteful:1', '--layer', '99']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--layer 99');
  });

  it('tsbuild layer ls shows index, digest, diffID, size and created_by per layer', async () => {
    const out = await tsbuild(['layer', 'ls', '--root', root, 'wasteful:1']);
    expect(out.code).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^INDEX\s+DIGEST\s+DIFF ID\s+SIZE\s+CREATED BY$/);
    expect(lines).toHaveLength(analysis.layers.length + 1);
    const last = analysis.layers[analysis.layers.length - 1]!;
    expect(lines[lines.length - 1]).toContain(last.digest);
    expect(lines[lines.length - 1]).toContain(last.diffId);
    expect(lines[lines.length - 1]).toContain('rm /big');
    const missing = await tsbuild(['layer', 'ls', '--root', root, 'nope:1']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nope:1');
  });
});
