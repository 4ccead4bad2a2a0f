/** Build cache rules through the real builder and CLI: hits, --no-cache(-filter), ARG scope, ignored files, prune, --explain-cache. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../src/builder/events.js';
import { runCli } from './cli-helpers.js';
import { imageOf, readInImage, useBusyboxStore, runBuild } from './helpers.js';

const fx = useBusyboxStore();
const { ctx } = fx;

/** Per visible step after FROM: its text and whether it was CACHED. */
function outcome(events: BuildEvent[]): string[] {
  const text = new Map<number, string>();
  const out: string[] = [];
  for (const e of events) {
    if (e.type === 'step-start' && !e.text.startsWith('FROM')) text.set(e.id, `${e.stage === '' ? '' : `${e.stage}: `}${e.text}`);
    if (e.type === 'step-cached' && text.has(e.id)) out.push(`CACHED ${text.get(e.id) ?? ''}`);
    if (e.type === 'step-done' && text.has(e.id)) out.push(`RAN ${text.get(e.id) ?? ''}`);
  }
  return out;
}

describe('build cache', () => {
  it('reports CACHED steps (events and plain progress), and --no-cache reruns them all', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nCOPY a.txt /a\nRUN cat /a > /b\n', 'a.txt': 'a' });
    await runBuild(fx.store, { contextDir: dir });
    const warm = await runBuild(fx.store, { contextDir: dir });
    expect(outcome(warm.events)).toEqual(['CACHED COPY a.txt /a', 'CACHED RUN cat /a > /b']);
    const cli = await runCli(['--root', fx.root, 'build', '--progress', 'plain', dir]);
    expect(cli.code).toBe(0);
    expect(cli.stderr).toContain('#2 [2/3] COPY a.txt /a\n#2 CACHED\n');
    expect(cli.stderr).toContain('#3 [3/3] RUN cat /a > /b\n#3 CACHED\n');
    const cold = await runBuild(fx.store, { contextDir: dir, noCache: true });
    expect(outcome(cold.events)).toEqual(['RAN COPY a.txt /a', 'RAN RUN cat /a > /b']);
  });

  it('after a --no-cache re-run, a cached build gives the image of that run, not a mix with the run before', async () => {
    // Each RUN's output differs per run; /t2 must always be the /t beneath it.
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nRUN cat /proc/sys/kernel/random/uuid > /t\nRUN cp /t /t2\n' });
    const read = async (r: { result: { manifestDigest: string } }): Promise<[string | undefined, string | undefined]> => {
      const { view } = await imageOf(fx.store, r.result.manifestDigest);
      return [await readInImage(view, '/t'), await readInImage(view, '/t2')];
    };
    const first = await read(await runBuild(fx.store, { contextDir: dir }));
    const forced = await read(await runBuild(fx.store, { contextDir: dir, noCache: true }));
    expect(forced[0]).not.toBe(first[0]);
    const again = await runBuild(fx.store, { contextDir: dir });
    expect(outcome(again.events)).toEqual(['CACHED RUN cat /proc/sys/kernel/random/uuid > /t', 'CACHED RUN cp /t /t2']);
    expect(await read(again)).toEqual(forced);
    expect(forced[1]).toBe(forced[0]);
  });

  it('--no-cache-filter STAGE rebuilds only that stage', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local AS one\nRUN echo 1 > /one\n\nFROM busybox:local AS two\nRUN echo 2 > /two\n\nFROM busybox:local\nCOPY --from=two /two /two\n' });
    await runBuild(fx.store, { contextDir: dir, target: 'two' });
    await runBuild(fx.store, { contextDir: dir, target: 'one' });
    const { events } = await runBuild(fx.store, { contextDir: dir, target: 'two', noCacheFilter: ['ONE'] });
    expect(outcome(events)).toEqual(['CACHED two: RUN echo 2 > /two']);
    const again = await runBuild(fx.store, { contextDir: dir, target: 'one', noCacheFilter: ['one'] });
    expect(outcome(again.events)).toEqual(['RAN one: RUN echo 1 > /one']);
    const both = await runBuild(fx.store, { contextDir: dir, noCacheFilter: ['two'] });
    expect(outcome(both.events)).toEqual(['RAN two: RUN echo 2 > /two', 'RAN stage-2: COPY --from=two /two /two']);
  });

  it('an ARG change misses from its first use, not before', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nRUN echo before > /before\nARG V\nRUN echo "$V" > /v\nRUN echo after > /after\n' });
    await runBuild(fx.store, { contextDir: dir, buildArgs: { V: '1' } });
    const { events } = await runBuild(fx.store, { contextDir: dir, buildArgs: { V: '2' } });
    expect(outcome(events)).toEqual(['CACHED RUN echo before > /before', 'RAN RUN echo "$V" > /v', 'RAN RUN echo after > /after']);
  });

  it('a change to an ignored file misses nothing', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nCOPY . /app/\nRUN ls /app > /list\n', '.dockerignore': '*.log\n', 'keep.txt': 'k', 'debug.log': '1' });
    await runBuild(fx.store, { contextDir: dir });
    await writeFile(join(dir, 'debug.log'), '2');
    await writeFile(join(dir, 'new.log'), '3');
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(outcome(events)).toEqual(['CACHED COPY . /app/', 'CACHED RUN ls /app > /list']);
  });

  it('the cache survives `tsbuild prune` of unrelated images', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nRUN echo kept > /kept\n' });
    const other = await ctx({ Dockerfile: 'FROM busybox:local\nRUN echo other > /other\n' });
    await runBuild(fx.store, { contextDir: dir });
    await runBuild(fx.store, { contextDir: other, tags: ['docker.io/library/unrelated:1'] });
    expect((await runCli(['--root', fx.root, 'rmi', 'unrelated:1'])).code).toBe(0);
    const pruned = await runCli(['--root', fx.root, 'prune']);
    expect(pruned.code).toBe(0);
    const { events } = await runBuild(fx.store, { contextDir: dir });
    expect(outcome(events)).toEqual(['CACHED RUN echo kept > /kept']);
  });

  it('--explain-cache names the input that differs', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nARG V=1\nCOPY a.txt b.txt /\nRUN echo one\nRUN echo "$V"\n', 'a.txt': 'a', 'b.txt': 'b' });
    const explain = async (): Promise<string[]> => {
      const r = await runCli(['--root', fx.root, 'build', '--progress', 'plain', '--explain-cache', '--build-arg', 'V=2', dir]);
      expect(r.code).toBe(0);
      return r.stderr.split('\n').filter((l) => l.includes('cache miss:'));
    };
    expect((await explain()).every((l) => l.endsWith('cache miss: no earlier build of this step in the cache'))).toBe(true);
    await writeFile(join(dir, 'b.txt'), 'B');
    await writeFile(join(dir, 'Dockerfile'), 'FROM busybox:local\nARG V=1\nCOPY a.txt b.txt /\nRUN echo two\nRUN echo "$V"\n');
    expect(await explain()).toEqual([
      '#2 cache miss: source files changed',
      '#2 cache miss: file b.txt changed',
      '#3 cache miss: instruction changed: "RUN [\\"/bin/sh\\",\\"-c\\",\\"echo one\\"]" -> "RUN [\\"/bin/sh\\",\\"-c\\",\\"echo two\\"]"',
      '#4 cache miss: parent changed: an earlier step or the base image differs',
    ]);
    const r = await runCli(['--root', fx.root, 'build', '--progress', 'plain', '--explain-cache', '--build-arg', 'V=3', dir]);
    expect(r.stderr.split('\n').filter((l) => l.includes('cache miss:'))).toEqual([
      // Every RUN after `ARG V` sees V in its environment, so both miss (BuildKit does the same).
      '#3 cache miss: build arg/env V changed: "2" -> "3"',
      '#4 cache miss: build arg/env V changed: "2" -> "3"',
    ]);
  });
});
