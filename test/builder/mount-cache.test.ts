/** RUN --mount=type=cache: from=STAGE seeding, uid/gid/mode, sharing=locked, through real builds. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireCli, startCli } from '../hostile/helpers.js';
import { imageOf, logOf, readInImage, runBuild, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

describe('RUN --mount=type=cache', () => {
  it('from=STAGE seeds the cache with that dir once; it then persists; a changed base is another cache', async () => {
    const files = (v: string): Record<string, string> => ({
      Dockerfile: [
        'FROM busybox:local AS deps',
        'COPY v /root/.cache/seed',
        'FROM busybox:local',
        'RUN --mount=type=cache,id=pkgs,from=deps,source=/root/.cache,target=/c cat /c/seed && ls /c && echo more > /c/added',
        'RUN --mount=type=cache,id=pkgs,from=deps,source=/root/.cache,target=/c ls /c',
        'RUN --mount=type=cache,id=pkgs,target=/c ls /c | wc -l',
      ].join('\n'),
      v,
    });
    const dir = await fx.ctx(files('one\n'));
    const first = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(first.events)).toBe('one\nseed\nadded\nseed\n0\n');
    await writeFile(join(dir, 'v'), 'two\n');
    const second = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(second.events)).toBe('two\nseed\nadded\nseed\n0\n');
    expect(second.events.flatMap((e) => (e.type === 'step-miss' ? e.reasons : []))).toContain('mount /c changed: content of /root/.cache from deps (the cache base)');
  });

  it('a new cache gets uid/gid/mode; a missing from= source dir fails at its line', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=cache,id=owned,target=/c,uid=1000,gid=100,mode=0750 stat -c "%u %g %a" /c\n' });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('1000 100 750\n');
    const bad = await fx.ctx({ Dockerfile: 'FROM busybox:local AS s\nFROM busybox:local\nRUN --mount=type=cache,from=s,source=/nope,target=/c true\n' });
    await expect(runBuild(fx.store, { contextDir: bad })).rejects.toMatchObject({ code: 'DOCKERFILE', line: 3, message: expect.stringContaining('cache mount source /nope is not a directory in s') as unknown });
  });

  it('sharing=locked: steps of parallel stages using the cache never overlap', async () => {
    const step = (n: string): string => `RUN --mount=type=cache,id=lk,target=/c,sharing=locked echo start-${n} >> /c/log && sleep 0.3 && echo end-${n} >> /c/log && echo ${n} > /done`;
    const dir = await fx.ctx({
      Dockerfile: ['FROM busybox:local AS a', step('a'), 'FROM busybox:local AS b', step('b'), 'FROM busybox:local',
        'COPY --from=a /done /a', 'COPY --from=b /done /b', 'RUN --mount=type=cache,id=lk,target=/c cp /c/log /log'].join('\n'),
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const { view } = await imageOf(fx.store, result.manifestDigest);
    const log = (await readInImage(view, '/log'))?.trim().split('\n') ?? [];
    expect(log).toHaveLength(4);
    const twice = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=cache,id=lk2,target=/a,sharing=locked --mount=type=cache,id=lk2,target=/b,sharing=locked touch /a/x && ls /b\n' });
    expect(logOf((await runBuild(fx.store, { contextDir: twice })).events)).toBe('x\n');
    for (let i = 0; i < 4; i += 2) expect(log[i + 1]).toBe((log[i] ?? '').replace('start', 'end'));
  });

  it('sharing=locked holds across two tsbuild processes on one store (flock on the cache)', async () => {
    requireCli();
    const step = (n: string): string => `FROM busybox:local\nRUN --mount=type=cache,id=xproc,target=/c,sharing=locked echo start-${n} >> /c/log && sleep 0.5 && echo end-${n} >> /c/log\n`;
    const [a, b] = await Promise.all([fx.ctx({ Dockerfile: step('a') }), fx.ctx({ Dockerfile: step('b') })]);
    const builds = [startCli(fx.store.root, ['build', '--progress', 'quiet', a]), startCli(fx.store.root, ['build', '--progress', 'quiet', b])];
    for (const r of await Promise.all(builds.map((c) => c.result))) expect(r.code, r.stderr).toBe(0);
    const read = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=cache,id=xproc,target=/c cp /c/log /log\n' });
    const { result } = await runBuild(fx.store, { contextDir: read });
    const log = (await readInImage((await imageOf(fx.store, result.manifestDigest)).view, '/log'))?.trim().split('\n') ?? [];
    expect(log).toHaveLength(4);
    for (let i = 0; i < 4; i += 2) expect(log[i + 1]).toBe((log[i] ?? '').replace('start', 'end'));
  });

  it('sharing=private: a step gets a dir of its own while another uses the cache', async () => {
    const step = (n: string): string => `RUN --mount=type=cache,id=pv,target=/c,sharing=private echo ${n} > /c/${n} && sleep 0.3 && ls /c > /seen`;
    const dir = await fx.ctx({
      Dockerfile: ['FROM busybox:local AS a', step('a'), 'FROM busybox:local AS b', step('b'), 'FROM busybox:local',
        'COPY --from=a /seen /a', 'COPY --from=b /seen /b', 'RUN --mount=type=cache,id=pv,target=/c ls /c > /kept'].join('\n'),
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/a')).toBe('a\n');
    expect(await readInImage(view, '/b')).toBe('b\n');
    expect(['a\n', 'b\n']).toContain(await readInImage(view, '/kept'));
  });
});
