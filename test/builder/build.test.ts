/**
 * End-to-end builds through the real sandbox (namespaces + overlayfs) into a real store:
 * a FROM scratch busybox image made from Debian's busybox-static, then images built on it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTsbuildError } from '../../src/util/errors.js';
import { useBusyboxStore, imageOf, makeContext, mountsSnapshot, readInImage, runBuild } from './helpers.js';

const fx = useBusyboxStore();

describe('busybox base image built FROM scratch', () => {
  it('has the binary, applet links, passwd and BuildKit-style config', async () => {
    const desc = await fx.store.tags.get('docker.io/library/busybox:local');
    expect(desc).toBeDefined();
    const { config, view } = await imageOf(fx.store, desc?.digest ?? '');
    const sh = await view.resolve('/bin/sh', false);
    expect(sh.entry?.stat.isSymbolicLink()).toBe(true);
    expect(await readInImage(view, '/etc/passwd')).toContain('app:x:1000:1000');
    expect(config.config?.Cmd).toEqual(['sh']);
    expect(config.config?.WorkingDir).toBe('/');
    expect(config.config?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(config.history?.map((h) => h.created_by)).toEqual([
      'COPY busybox /bin/busybox # buildkit',
      'RUN /bin/busybox --install -s /bin # buildkit',
      expect.stringMatching(/^RUN \/bin\/sh -c mkdir -p \/etc .* # buildkit$/),
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'CMD ["sh"]',
    ]);
    expect(config.rootfs.diff_ids).toHaveLength(3);
  });
});

describe('builds on the busybox base', () => {
  it('runs a two-stage build and copies between stages', async () => {
    const ctx = await makeContext({
      Dockerfile: 'FROM busybox:local AS build\nWORKDIR /src\nCOPY greet.sh .\nRUN sh greet.sh > out.txt\n\nFROM busybox:local\nCOPY --from=build /src/out.txt /srv/\nUSER app\nCMD ["cat", "/srv/out.txt"]\n',
      'greet.sh': 'echo "hello $(id -u)"\n',
    });
    fx.cleanup.push(ctx);
    const { result, events } = await runBuild(fx.store, { contextDir: ctx, tags: ['docker.io/library/hello:v1'] });
    const { config, view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/srv/out.txt')).toBe('hello 0\n');
    expect(config.config?.User).toBe('app');
    expect(events.filter((e) => e.type === 'step-start').map((e) => (e.type === 'step-start' ? `${e.stage} ${e.index}/${e.total}` : ''))).toEqual([
      'build 1/4', 'build 2/4', 'build 3/4', 'build 4/4', 'stage-1 1/2', 'stage-1 2/2',
    ]);
  });

  it('reuses the cache on a rebuild and explains a miss after an edit', async () => {
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n', 'a.txt': 'one\n' });
    fx.cleanup.push(ctx);
    const first = await runBuild(fx.store, { contextDir: ctx });
    const second = await runBuild(fx.store, { contextDir: ctx });
    expect(second.events.filter((e) => e.type === 'step-cached')).toHaveLength(2);
    expect(second.result.manifestDigest).not.toBe('');
    expect(second.result.config.rootfs.diff_ids).toEqual(first.result.config.rootfs.diff_ids);
    await writeFile(join(ctx, 'a.txt'), 'two\n');
    const third = await runBuild(fx.store, { contextDir: ctx });
    const miss = third.events.find((e) => e.type === 'step-miss');
    expect(miss?.type === 'step-miss' ? miss.reasons : []).toContain('source files changed');
    expect(await readInImage((await imageOf(fx.store, third.result.manifestDigest)).view, '/b.txt')).toBe('two\n');
  });

  it('a changed ignored file misses nothing', async () => {
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nCOPY . /app/\n', '.dockerignore': 'junk.log\n', 'keep.txt': 'k', 'junk.log': '1' });
    fx.cleanup.push(ctx);
    await runBuild(fx.store, { contextDir: ctx });
    await writeFile(join(ctx, 'junk.log'), '2');
    const again = await runBuild(fx.store, { contextDir: ctx });
    expect(again.events.filter((e) => e.type === 'step-cached')).toHaveLength(1);
    const { view } = await imageOf(fx.store, again.result.manifestDigest);
    expect(await readInImage(view, '/app/keep.txt')).toBe('k');
    expect(await readInImage(view, '/app/junk.log')).toBeUndefined();
  });

  it('copies a directory with ignored dirs left out and `!` exceptions re-included', async () => {
    const ctx = await makeContext({
      Dockerfile: 'FROM busybox:local\nCOPY . /app/\n',
      '.dockerignore': 'logs\ncache\n!cache/keep.txt\n',
      'logs/x.log': 'x',
      'cache/a.bin': 'a',
      'cache/keep.txt': 'keep',
      'src/main.sh': 'echo',
    });
    fx.cleanup.push(ctx);
    const { result } = await runBuild(fx.store, { contextDir: ctx });
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/app/src/main.sh')).toBe('echo');
    expect(await readInImage(view, '/app/cache/keep.txt')).toBe('keep');
    expect(await readInImage(view, '/app/cache/a.bin')).toBeUndefined();
    expect((await view.resolve('/app/logs')).entry).toBeUndefined();
  });

  it('an excluded dir walked only for a wildcard exception comes back only if something in it does', async () => {
    const ctx = await makeContext({
      Dockerfile: 'FROM busybox:local\nCOPY . /app/\n',
      '.dockerignore': 'abs\nnode_modules\n!**/keep.tmp\n',
      'abs/f': 'f',
      'node_modules/pkg/index.js': 'x',
      'node_modules/pkg/keep.tmp': 'kept',
      'src/main.sh': 'echo',
    });
    fx.cleanup.push(ctx);
    const { result } = await runBuild(fx.store, { contextDir: ctx });
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect((await view.resolve('/app/abs')).entry).toBeUndefined();
    expect(await readInImage(view, '/app/node_modules/pkg/keep.tmp')).toBe('kept');
    expect(await readInImage(view, '/app/node_modules/pkg/index.js')).toBeUndefined();
  });

  it('a failing RUN reports the command and exit code, and leaves no mount behind', async () => {
    const before = await mountsSnapshot();
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nRUN echo doomed && exit 3\n' });
    fx.cleanup.push(ctx);
    const err: unknown = await runBuild(fx.store, { contextDir: ctx }).catch((e: unknown) => e);
    expect(isTsbuildError(err) && err.code).toBe('RUN_FAILED');
    expect((err as Error).message).toBe('process "/bin/sh -c echo doomed && exit 3" did not complete successfully: exit code: 3');
    expect(isTsbuildError(err) ? err.hint : '').toContain('doomed');
    expect(await mountsSnapshot()).toBe(before);
  });

  it('rejects an unknown instruction with its line', async () => {
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local\n\nRUNN echo hi\n' });
    fx.cleanup.push(ctx);
    const err = (await runBuild(fx.store, { contextDir: ctx }).catch((e: unknown) => e)) as { code?: string; line?: number; message: string };
    expect(err.code).toBe('DOCKERFILE');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/unknown instruction: RUNN/i);
  });

  it('never copies from outside the context: `..` stops at its root', async () => {
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nCOPY ../etc/passwd /x\n' });
    fx.cleanup.push(ctx);
    const err = (await runBuild(fx.store, { contextDir: ctx }).catch((e: unknown) => e)) as { code?: string; message: string };
    expect(err.code).toBe('CONTEXT');
    expect(err.message).toContain('"/etc/passwd": not found in the build context');
  });
});
