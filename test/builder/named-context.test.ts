/**
 * Named build contexts (`--build-context NAME=VALUE`, src/builder/named-context.ts) in real builds
 * on the busybox store: a local directory (with its own .dockerignore) and an image, looked up where
 * BuildKit looks them up — a stage of that name is replaced and never runs, a FROM and a COPY --from
 * take the context before any image, names match in their familiar form — plus the CLI's errors.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contextKey, parseNamedContexts, type NamedContext } from '../../src/builder/named-context.js';
import { cli } from '../cli/helpers.js';
import type { Digest } from '../../src/image/index.js';
import { failure, imageOf, newStore, readInImage, runBuild, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

const contexts = (specs: string[]): Map<string, NamedContext> => parseNamedContexts(specs, '/');

describe('named build contexts', () => {
  it('a local directory: COPY --from and FROM see its files, its own .dockerignore applies, and it caches by content', async () => {
    const assets = await fx.ctx({ 'a.txt': 'asset a\n', 'sub/b.txt': 'asset b\n', 'secret.key': 'no\n', '.dockerignore': 'secret.key\n' });
    const ctx = await fx.ctx({
      Dockerfile:
        'FROM busybox:local\nCOPY --from=assets /a.txt /sub/b.txt /out/\nRUN test ! -e /out/secret.key && cat /out/a.txt /out/b.txt > /out/both\n' +
        'RUN --mount=from=assets,target=/m cp /m/sub/b.txt /out/mounted && test ! -e /m/secret.key\n',
    });
    const namedContexts = contexts([`assets=${assets}`]);
    const first = await runBuild(fx.store, { contextDir: ctx, namedContexts });
    const { view } = await imageOf(fx.store, first.result.manifestDigest);
    expect(await readInImage(view, '/out/both')).toBe('asset a\nasset b\n');
    expect(await readInImage(view, '/out/mounted')).toBe('asset b\n');

    const fromDir = await fx.ctx({ Dockerfile: 'FROM assets\nCMD ["x"]\n' });
    const based = await runBuild(fx.store, { contextDir: fromDir, namedContexts });
    const image = await imageOf(fx.store, based.result.manifestDigest);
    expect(await readInImage(image.view, '/sub/b.txt')).toBe('asset b\n');
    expect(await readInImage(image.view, '/secret.key')).toBeUndefined();
    expect(image.config.config?.Cmd).toEqual(['x']);
    expect(image.config.rootfs.diff_ids).toHaveLength(1);

    // Same files: the whole build is cached; an edit in the named context misses.
    const again = await runBuild(fx.store, { contextDir: ctx, namedContexts });
    expect(again.result.manifestDigest).toBe(first.result.manifestDigest);
    expect(again.events.filter((e) => e.type === 'step-cached').length).toBeGreaterThanOrEqual(2);
    await writeFile(join(assets, 'a.txt'), 'asset A\n');
    const edited = await runBuild(fx.store, { contextDir: ctx, namedContexts });
    expect(await readInImage((await imageOf(fx.store, edited.result.manifestDigest)).view, '/out/both')).toBe('asset A\nasset b\n');
  });

  it('replaces a stage of its name whole: its instructions never run', async () => {
    const deps = await fx.ctx({ 'lib.txt': 'prebuilt\n' });
    const ctx = await fx.ctx({
      Dockerfile: 'FROM busybox:local AS deps\nRUN exit 3\nFROM busybox:local\nCOPY --from=deps /lib.txt /lib.txt\n',
    });
    const err = await failure(runBuild(fx.store, { contextDir: ctx }));
    expect(err.message).toContain('exit code: 3');
    const { result, events } = await runBuild(fx.store, { contextDir: ctx, namedContexts: contexts([`deps=${deps}`]) });
    expect(await readInImage((await imageOf(fx.store, result.manifestDigest)).view, '/lib.txt')).toBe('prebuilt\n');
    expect(events.some((e) => e.type === 'step-start' && e.text === 'build context deps')).toBe(true);
    expect(events.some((e) => e.type === 'step-start' && e.text.startsWith('RUN'))).toBe(false);
  });

  it('an image context stands in for the image name in FROM and COPY --from, matched in familiar form', async () => {
    const ctx = await fx.ctx({
      Dockerfile: 'FROM docker.io/library/alpine:latest\nCOPY --from=tools /bin/busybox /tools/busybox\nRUN /tools/busybox true && test -x /bin/sh\n',
    });
    const namedContexts = contexts(['alpine=docker-image://busybox:local', 'tools=docker-image://docker.io/library/busybox:local']);
    const { result } = await runBuild(fx.store, { contextDir: ctx, namedContexts });
    const { config } = await imageOf(fx.store, result.manifestDigest);
    // The busybox image's layers, then the COPY and the RUN.
    expect(config.rootfs.diff_ids.slice(0, fx.base.config.rootfs.diff_ids.length)).toEqual(fx.base.config.rootfs.diff_ids);
    expect(contextKey('docker.io/library/alpine:latest')).toBe('alpine');
    expect(contextKey('alpine:3.19')).toBe('alpine:3.19');
    expect(contextKey('ghcr.io/o/r:latest')).toBe('ghcr.io/o/r');
  });

  it('an oci-layout context: the image skopeo copied into a layout, by tag or digest, blobs verified on the way in', async () => {
    const layout = join(fx.root, '..', `layout-${Date.now()}`);
    fx.cleanup.push(layout);
    // A layout of its own (gzip layers, ref.name v1), made by skopeo from the store's busybox image.
    execFileSync('skopeo', ['copy', '--quiet', `oci:${fx.root}:docker.io/library/busybox:local`, `oci:${layout}:v1`]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const digest = index.manifests[0]?.digest ?? '';
    const ctx = await fx.ctx({ Dockerfile: 'FROM base\nRUN busybox true > /ok\n' });
    for (const spec of [`base=oci-layout://${layout}:v1`, `base=oci-layout://${layout}@${digest}`]) {
      const { result } = await runBuild(fx.store, { contextDir: ctx, namedContexts: contexts([spec]) });
      const { config } = await imageOf(fx.store, result.manifestDigest);
      expect(config.rootfs.diff_ids.slice(0, fx.base.config.rootfs.diff_ids.length)).toEqual(fx.base.config.rootfs.diff_ids);
    }
    const missingTag = await failure(runBuild(fx.store, { contextDir: ctx, namedContexts: contexts([`base=oci-layout://${layout}:v2`]) }));
    expect(missingTag.message).toContain(`oci-layout://${layout}: no image tagged v2 in its index.json`);
    // A tampered blob is refused by its digest, and nothing of it is stored.
    const tampered = join(fx.root, '..', `layout-bad-${Date.now()}`);
    fx.cleanup.push(tampered);
    execFileSync('cp', ['-a', layout, tampered]);
    const manifest = JSON.parse(await readFile(join(tampered, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8')) as { config: { digest: string } };
    const configPath = join(tampered, 'blobs', 'sha256', manifest.config.digest.slice('sha256:'.length));
    const other = await newStore();
    fx.cleanup.push(other.root);
    await writeFile(configPath, (await readFile(configPath, 'utf8')).replace('"os":"linux"', '"os":"linUx"'));
    const bad = await failure(runBuild(other.store, { contextDir: ctx, namedContexts: contexts([`base=oci-layout://${tampered}:v1`]) }));
    expect(bad.message).toContain(`oci-layout://${tampered}: blob ${manifest.config.digest}`);
    expect(await other.store.blobs.has(manifest.config.digest as Digest)).toBe(false);
  });

  it('refuses what it cannot take, naming the flag value', async () => {
    const ctx = await fx.ctx({ Dockerfile: 'FROM busybox:local\n' });
    const run = (spec: string): Promise<{ code: number; stderr: string }> => cli(['--root', fx.root, 'build', '--build-context', spec, ctx]);
    for (const [spec, message] of [
      ['noequals', '--build-context needs NAME=VALUE: noequals'],
      ['x=oci-layout:///no/such/layout:v1', '--build-context x=oci-layout:///no/such/layout:v1: /no/such/layout is not an OCI image layout (no index.json)'],
      ['x=git://example.com/r.git', 'unsupported source'],
      ['x=https://example.com/a.git', 'unsupported source'],
      ['Bad Name=/tmp', 'invalid context name "Bad Name"'],
      ['x=docker-image://UPPER', '--build-context x=docker-image://UPPER:'],
      ['x=/no/such/dir', '--build-context x=/no/such/dir: /no/such/dir is not a directory'],
    ] as const) {
      const r = await run(spec);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(message);
    }
  });
});
