/** ONBUILD through the real builder: triggers stored, run after FROM (image or stage), cleared in the child. */
import { describe, expect, it } from 'vitest';
import { isTsbuildError } from '../../src/util/errors.js';
import { useBusyboxStore, imageOf, readInImage, runBuild } from './helpers.js';

const fx = useBusyboxStore();
const { ctx } = fx;
const baseHistory = (): string[] => (fx.base.config.history ?? []).map((h) => h.created_by ?? '');

describe('ONBUILD', () => {
  it('stores triggers without history and runs them in a child image, right after FROM', async () => {
    const base = await runBuild(fx.store, {
      contextDir: await ctx({ Dockerfile: 'FROM busybox:local\nONBUILD RUN echo trig > /trig\nONBUILD COPY a.txt /from-child.txt\nLABEL x=1\n' }),
      tags: ['docker.io/library/onb:base'],
    });
    expect(base.result.config.config?.OnBuild).toEqual(['RUN echo trig > /trig', 'COPY a.txt /from-child.txt']);
    expect(base.result.config.history?.map((h) => h.created_by)).toEqual([...baseHistory(), 'LABEL x=1']);

    const child = await runBuild(fx.store, {
      contextDir: await ctx({ Dockerfile: 'FROM onb:base\nRUN cat /trig /from-child.txt > /both\n', 'a.txt': 'child file\n' }),
    });
    const { config, view } = await imageOf(fx.store, child.result.manifestDigest);
    expect(await readInImage(view, '/both')).toBe('trig\nchild file\n');
    expect(config.config?.OnBuild).toBeUndefined();
    expect(config.history?.map((h) => h.created_by)).toEqual([
      ...baseHistory(),
      'LABEL x=1',
      'RUN /bin/sh -c echo trig > /trig # buildkit',
      'COPY a.txt /from-child.txt # buildkit',
      'RUN /bin/sh -c cat /trig /from-child.txt > /both # buildkit',
    ]);
    const starts = child.events.flatMap((e) => (e.type === 'step-start' ? [`${e.index}/${e.total} ${e.text}`] : []));
    expect(starts).toEqual(['1/4 FROM onb:base', '2/4 ONBUILD RUN echo trig > /trig', '3/4 ONBUILD COPY a.txt /from-child.txt', '4/4 RUN cat /trig /from-child.txt > /both']);
  });

  it('runs the triggers of an earlier stage used as a base, and keeps only the stage\'s own ONBUILDs', async () => {
    const { result } = await runBuild(fx.store, {
      contextDir: await ctx({ Dockerfile: 'FROM busybox:local AS base\nONBUILD RUN touch /marker\n\nFROM base\nONBUILD RUN echo later\nRUN test -f /marker && echo ok > /ok\n' }),
    });
    const { config, view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/ok')).toBe('ok\n');
    expect(config.config?.OnBuild).toEqual(['RUN echo later']);
  });

  it('refuses ONBUILD ONBUILD / FROM / MAINTAINER', async () => {
    for (const [line, msg] of [
      ['ONBUILD ONBUILD RUN x', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed'],
      ['ONBUILD FROM busybox', 'FROM isn\'t allowed as an ONBUILD trigger'],
      ['ONBUILD MAINTAINER me', 'MAINTAINER isn\'t allowed as an ONBUILD trigger'],
    ] as const) {
      const err = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: `FROM busybox:local\n${line}\n` }) }).catch((e: unknown) => e);
      expect(isTsbuildError(err) && err.code).toBe('DOCKERFILE');
      expect((err as Error).message).toContain(msg);
    }
  });

  it('a failing trigger names the base image and the trigger text and points at the FROM line', async () => {
    await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: 'FROM busybox:local\nONBUILD RUN exit 7\n' }), tags: ['docker.io/library/onb:bad'] });
    const err = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: '# child\nFROM onb:bad\nRUN true\n' }) }).catch((e: unknown) => e);
    expect(isTsbuildError(err) && err.code).toBe('RUN_FAILED');
    expect((err as Error).message).toBe('ONBUILD trigger "RUN exit 7" of base image onb:bad: process "/bin/sh -c exit 7" did not complete successfully: exit code: 7');
    expect(err).toMatchObject({ file: 'Dockerfile', line: 2, excerpt: 'FROM onb:bad' });
  });
});
