/** RUN --mount=type=bind from a stage, an index or an image, and bind sources in the cache key, through real builds. */
import { symlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../src/builder/events.js';
import { planBuild } from '../../src/builder/plan.js';
import { parseDockerfile } from '../../src/parser/index.js';
import { runCli } from './cli-helpers.js';
import { failure, imageOf, logOf, readInImage, runBuild, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

/** Per RUN step: RAN or CACHED, with the miss reasons when it ran. */
function runs(events: BuildEvent[]): string[] {
  const text = new Map<number, string>();
  const reasons = new Map<number, string[]>();
  const out: string[] = [];
  for (const e of events) {
    if (e.type === 'step-start' && e.text.startsWith('RUN')) text.set(e.id, e.text);
    if (e.type === 'step-miss') reasons.set(e.id, e.reasons);
    if (e.type === 'step-cached' && text.has(e.id)) out.push(`CACHED ${text.get(e.id) ?? ''}`);
    if (e.type === 'step-done' && text.has(e.id)) out.push(`RAN ${text.get(e.id) ?? ''} <- ${(reasons.get(e.id) ?? []).join('; ')}`);
  }
  return out;
}

// A stage of several layers: a file removed in a later layer (whiteout), a dir replaced (opaque).
const STAGE = [
  'FROM busybox:local AS build',
  'RUN mkdir -p /out/sub /out/gone && echo one > /out/a && echo old > /out/gone/x && echo del > /out/del',
  'RUN echo two > /out/b && rm /out/del && rm -r /out/gone && mkdir /out/gone && echo new > /out/gone/y',
  'RUN echo three > /out/sub/c && ln -s sub/c /out/link',
];

describe('RUN --mount=type=bind,from=', () => {
  it('mounts the merged rootfs of a stage read-only, source resolved inside it', async () => {
    const dir = await fx.ctx({
      Dockerfile: [
        ...STAGE,
        'FROM busybox:local',
        'RUN --mount=type=bind,from=build,source=/out,target=/in cp -r /in/. /app/ && (touch /in/w 2>/dev/null && echo writable || echo read-only)',
        'RUN --mount=type=bind,from=build,source=/out/link,target=/c.txt cat /c.txt > /c-copy',
      ].join('\n'),
    });
    const { result, events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('read-only\n');
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect((await view.list((await view.resolve('/app')).entry ?? fail())).sort()).toEqual(['a', 'b', 'gone', 'link', 'sub']);
    expect(await readInImage(view, '/app/b')).toBe('two\n');
    expect(await readInImage(view, '/app/sub/c')).toBe('three\n');
    expect(await readInImage(view, '/app/gone/y')).toBe('new\n');
    expect((await view.resolve('/app/gone/x')).entry).toBeUndefined();
    expect(await readInImage(view, '/c-copy')).toBe('three\n');
    // The mount target is a stub: not in the layer.
    expect((await view.resolve('/in', false)).entry).toBeUndefined();
  });

  it('rw lets the step write; the writes are discarded and the stage is unchanged', async () => {
    const dir = await fx.ctx({
      Dockerfile: [
        ...STAGE,
        'FROM busybox:local',
        'RUN --mount=type=bind,from=build,source=/out,target=/in,rw echo changed > /in/a && rm /in/b && cat /in/a && ls /in | tr "\\n" " "',
        'RUN --mount=type=bind,from=build,source=/out,target=/in cat /in/a /in/b',
      ].join('\n'),
    });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('changed\na gone link sub one\ntwo\n');
  });

  it('takes a stage index and an image reference, and a single file source', async () => {
    const dir = await fx.ctx({
      Dockerfile: [
        'FROM busybox:local',
        'RUN echo zero > /z',
        'FROM busybox:local',
        'RUN --mount=type=bind,from=0,source=/z,target=/z cat /z',
        'RUN --mount=type=bind,from=busybox:local,source=/bin/busybox,target=/bb cmp /bb /bin/busybox && echo from-image',
      ].join('\n'),
    });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('zero\nfrom-image\n');
  });

  it('builds a stage only a mount needs, before the step (plan and execution)', async () => {
    const text = ['FROM busybox:local AS unused', 'RUN echo u > /u', 'FROM busybox:local AS assets', 'RUN echo asset > /asset',
      'FROM busybox:local', 'RUN --mount=from=1,source=/asset,target=/a cat /a'].join('\n');
    const plan = planBuild(parseDockerfile(text));
    expect(plan.stagesToBuild).toEqual([1, 2]);
    const dir = await fx.ctx({ Dockerfile: text });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('asset\n');
  });

  it('a stage whose steps changed nothing (the same empty layer three times) mounts and runs', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local AS quiet\nRUN true\nRUN true\nRUN true\nFROM busybox:local\nRUN --mount=from=quiet,target=/q ls /q/bin/busybox\n' });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('/q/bin/busybox\n');
  });

  it('a stage of more layers than fit one overlay option string (lowerdir+ path)', async () => {
    const n = 100;
    const files: Record<string, string> = {};
    for (let i = 0; i < n; i++) files[`f${i}`] = `${i}\n`;
    const copies = Object.keys(files).map((f) => `COPY ${f} /out/${f}`);
    const dir = await fx.ctx({ ...files, Dockerfile: ['FROM busybox:local AS tall', ...copies, 'FROM busybox:local', 'RUN --mount=from=tall,source=/out,target=/o cat /o/f0 /o/f99 && ls /o | wc -l'].join('\n') });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe(`0\n99\n${n}\n`);
  }, 60_000);

  it('a symlink in the stage cannot point the source at a host path (CVE-2024-1753)', async () => {
    const host = await fx.ctx({ 'secret.txt': 'host-secret\n' });
    const dir = await fx.ctx({
      Dockerfile: [
        'FROM busybox:local AS evil',
        `RUN ln -s ${host}/secret.txt /abs && ln -s ../../../../../../../..${host} /rel && mkdir -p ${host} && echo inside > ${host}/secret.txt`,
        'FROM busybox:local',
        'RUN --mount=type=bind,from=evil,source=/abs,target=/x cat /x',
        'RUN --mount=type=bind,from=evil,source=/rel,target=/y cat /y/secret.txt',
      ].join('\n'),
    });
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('inside\ninside\n');
    const missing = await fx.ctx({ Dockerfile: ['FROM busybox:local AS evil', `RUN ln -s ${host}/secret.txt /abs`, 'FROM busybox:local', 'RUN --mount=type=bind,from=evil,source=/abs,target=/x cat /x'].join('\n') });
    const err = await failure(runBuild(fx.store, { contextDir: missing }));
    expect(err).toMatchObject({ code: 'DOCKERFILE', line: 4, message: expect.stringContaining('bind mount source /abs not found in evil') as unknown });
  });
});

describe('bind mount sources in the cache key', () => {
  it('editing the mounted context file re-runs the step (and --explain-cache names it); an unrelated edit does not', async () => {
    const dir = await fx.ctx({
      Dockerfile: 'FROM busybox:local\nRUN --mount=type=bind,source=go.mod,target=/src/go.mod cat /src/go.mod > /mod\nRUN --mount=type=bind,target=/ctx ls /ctx > /ls\n',
      'go.mod': 'module a\n',
      'main.go': 'package main\n',
    });
    await runBuild(fx.store, { contextDir: dir });
    await writeFile(join(dir, 'main.go'), 'package main // edited\n');
    const unrelated = await runBuild(fx.store, { contextDir: dir });
    expect(runs(unrelated.events)).toEqual([
      'CACHED RUN --mount=type=bind,source=go.mod,target=/src/go.mod cat /src/go.mod > /mod',
      'RAN RUN --mount=type=bind,target=/ctx ls /ctx > /ls <- mount /ctx changed: content of . in the context; file /main.go changed',
    ]);
    await writeFile(join(dir, 'go.mod'), 'module b\n');
    const edited = await runBuild(fx.store, { contextDir: dir });
    expect(runs(edited.events)).toEqual([
      'RAN RUN --mount=type=bind,source=go.mod,target=/src/go.mod cat /src/go.mod > /mod <- mount /src/go.mod changed: content of go.mod in the context; file go.mod changed',
      'RAN RUN --mount=type=bind,target=/ctx ls /ctx > /ls <- mount /ctx changed: content of . in the context; file /go.mod changed',
    ]);
    const { view } = await imageOf(fx.store, edited.result.manifestDigest);
    expect(await readInImage(view, '/mod')).toBe('module b\n');
    await writeFile(join(dir, 'go.mod'), 'module c\n');
    const cli = await runCli(['--root', fx.root, 'build', '--progress', 'plain', '--explain-cache', dir]);
    expect(cli.code).toBe(0);
    expect(cli.stderr).toContain('mount /src/go.mod changed: content of go.mod in the context');
  });

  it('a change in the source stage re-runs the step; an unchanged stage keeps it cached', async () => {
    const files = (v: string): Record<string, string> => ({
      Dockerfile: 'FROM busybox:local AS build\nCOPY v /out/v\nFROM busybox:local\nRUN --mount=type=bind,from=build,source=/out,target=/in cat /in/v > /v\n',
      v,
    });
    const dir = await fx.ctx(files('1\n'));
    await runBuild(fx.store, { contextDir: dir });
    expect(runs((await runBuild(fx.store, { contextDir: dir })).events)).toEqual(['CACHED RUN --mount=type=bind,from=build,source=/out,target=/in cat /in/v > /v']);
    await writeFile(join(dir, 'v'), '2\n');
    const { events, result } = await runBuild(fx.store, { contextDir: dir });
    expect(runs(events)).toEqual(['RAN RUN --mount=type=bind,from=build,source=/out,target=/in cat /in/v > /v <- mount /in changed: content of /out from build']);
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/v')).toBe('2\n');
  });

  it('a context dir shows what .dockerignore leaves in (ro and rw), and an ignored file never re-runs the step', async () => {
    const dir = await fx.ctx({
      Dockerfile: 'FROM busybox:local\nRUN --mount=type=bind,target=/ctx find /ctx | sort > /ro\nRUN --mount=type=bind,target=/ctx,rw find /ctx | sort > /rw\n',
      '.dockerignore': 'node_modules\n**/*.log\n!keep.log\n',
      'app.js': 'a', 'keep.log': 'k', 'x.log': 'x', 'node_modules/m/index.js': 'm', 'sub/deep.log': 'd', 'sub/ok.txt': 'o',
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const { view } = await imageOf(fx.store, result.manifestDigest);
    const want = ['/ctx', '/ctx/.dockerignore', '/ctx/Dockerfile', '/ctx/app.js', '/ctx/keep.log', '/ctx/sub', '/ctx/sub/ok.txt'].join('\n') + '\n';
    expect(await readInImage(view, '/ro')).toBe(want);
    expect(await readInImage(view, '/rw')).toBe(want);
    await writeFile(join(dir, 'x.log'), 'changed');
    const again = await runBuild(fx.store, { contextDir: dir });
    expect(runs(again.events).every((r) => r.startsWith('CACHED'))).toBe(true);
  });

  it('a relative target is below WORKDIR (go.mod beside the sources)', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nWORKDIR /src\nRUN --mount=type=bind,source=go.mod,target=go.mod cat /src/go.mod\n', 'go.mod': 'module m\n' });
    const { events, result } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('module m\n');
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect((await view.resolve('/go.mod', false)).entry).toBeUndefined();
    const root = await fx.ctx({ Dockerfile: 'FROM busybox:local\nWORKDIR /src\nRUN --mount=type=bind,target=/.. true\n' });
    await expect(runBuild(fx.store, { contextDir: root })).rejects.toMatchObject({ line: 3, message: expect.stringContaining('invalid mount target "/"') as unknown });
  });

  it('a context bind source through a symlink still resolves inside the context', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nRUN --mount=type=bind,source=link,target=/x cat /x/f\n', 'real/f': 'in-context\n' });
    symlinkSync('../../../../../real', join(dir, 'link'));
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(logOf(events)).toBe('in-context\n');
  });
});

function fail(): never {
  throw new Error('missing entry');
}
