/**
 * Progress output: BuildKit's plain format and JSON lines, asserted exactly — from a scripted event
 * sequence with a fake clock, and from real builds through the CLI (durations normalised).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../src/builder/events.js';
import { jsonRenderer, plainRenderer } from '../../src/cli/progress/plain.js';
import { cli, removeAll, tempDir, writeTree } from './helpers.js';

const IMG = `sha256:${'a'.repeat(64)}`;

function script(): { events: BuildEvent[]; clock: number[] } {
  // Each event is delivered at the matching clock time (ms).
  const events: BuildEvent[] = [
    { type: 'step-start', id: 1, stage: 'build', index: 1, total: 3, text: 'FROM docker.io/library/busybox:local' },
    { type: 'step-done', id: 1, durationMs: 12 },
    { type: 'step-start', id: 2, stage: 'build', index: 2, total: 3, text: 'COPY . /src' },
    { type: 'step-cached', id: 2 },
    { type: 'step-start', id: 3, stage: 'build', index: 3, total: 3, text: 'RUN make' },
    { type: 'step-miss', id: 3, reasons: ['instruction text changed'] },
    { type: 'step-log', id: 3, stream: 'stdout', data: 'compiling a\ncompil' },
    { type: 'step-log', id: 3, stream: 'stdout', data: 'ing b\n' },
    { type: 'step-log', id: 3, stream: 'stderr', data: 'warning: x' },
    { type: 'step-done', id: 3, durationMs: 1234, layerSize: 4_260_000 },
    { type: 'warning', message: 'build-arg FOO was given but no stage consumes it' },
    { type: 'build-done', imageId: IMG, manifestDigest: IMG, tags: ['docker.io/library/app:v1', 'docker.io/library/app:latest'], durationMs: 1500 },
  ];
  const clock = [0, 12, 20, 25, 30, 31, 153, 400, 1100, 1264, 1270, 1300];
  return { events, clock };
}

function replay(make: (now: () => number) => (e: BuildEvent) => void, events: BuildEvent[], clock: number[]): void {
  let t = 0;
  const render = make(() => t);
  events.forEach((e, i) => {
    t = clock[i] ?? t;
    render(e);
  });
}

describe('plain renderer', () => {
  it("writes BuildKit's plain format exactly", () => {
    let out = '';
    const { events, clock } = script();
    replay((now) => plainRenderer((s) => (out += s), { now, explainCache: true }), events, clock);
    expect(out).toBe(
      [
        '#1 [build 1/3] FROM docker.io/library/busybox:local',
        '#1 DONE 0.0s',
        '',
        '#2 [build 2/3] COPY . /src',
        '#2 CACHED',
        '',
        '#3 [build 3/3] RUN make',
        '#3 cache miss: instruction text changed',
        '#3 0.123 compiling a',
        '#3 0.370 compiling b',
        '#3 1.234 warning: x',
        '#3 DONE 1.2s',
        '',
        'WARNING: build-arg FOO was given but no stage consumes it',
        '#4 exporting to image',
        `#4 writing image ${IMG} done`,
        '#4 naming to docker.io/library/app:v1 done',
        '#4 naming to docker.io/library/app:latest done',
        '#4 DONE 0.0s',
        '',
      ].join('\n'),
    );
  });

  it('prints a failed step as ERROR plus the ------ block with its last output lines', () => {
    let out = '';
    let t = 0;
    const render = plainRenderer((s) => (out += s), { now: () => t });
    render({ type: 'step-start', id: 2, stage: '', index: 2, total: 2, text: 'RUN ./test.sh' });
    for (let i = 1; i <= 8; i++) {
      t = i * 100;
      render({ type: 'step-log', id: 2, stream: 'stdout', data: `line ${i}\n` });
    }
    t = 900;
    render({ type: 'step-error', id: 2, message: 'process "/bin/sh -c ./test.sh" did not complete successfully: exit code: 1' });
    const lines = Array.from({ length: 8 }, (_, i) => `#2 0.${i + 1}00 line ${i + 1}`);
    expect(out).toBe(
      [
        '#2 [2/2] RUN ./test.sh',
        ...lines,
        '#2 ERROR: process "/bin/sh -c ./test.sh" did not complete successfully: exit code: 1',
        '------',
        ' > [2/2] RUN ./test.sh:',
        ...lines.slice(-6).map((l) => l.slice(3)),
        '------',
        '',
        '',
      ].join('\n'),
    );
  });
});

describe('json renderer', () => {
  it('writes one object per event with its time', () => {
    let out = '';
    const { events, clock } = script();
    replay((now) => jsonRenderer((s) => (out += s), { now }), events, clock);
    const lines = out.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(events.length);
    expect(lines[0]).toBe('{"time":"1970-01-01T00:00:00.000Z","type":"step-start","id":1,"stage":"build","index":1,"total":3,"text":"FROM docker.io/library/busybox:local"}');
    expect(lines[9]).toBe('{"time":"1970-01-01T00:00:01.264Z","type":"step-done","id":3,"durationMs":1234,"layerSize":4260000}');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual(events.map((e, i) => ({ time: new Date(clock[i] ?? 0).toISOString(), ...e })));
  });
});

describe('through the CLI', () => {
  const dirs: string[] = [];
  let root: string;
  let ctx: string;
  beforeAll(async () => {
    root = await tempDir('progress');
    ctx = await tempDir('progress-ctx');
    dirs.push(root, ctx);
    await writeTree(ctx, { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\nENV A=1\n', 'a.txt': 'a\n' });
  });
  afterAll(() => removeAll(dirs));

  const normalise = (s: string): string => s.replace(/DONE \d+\.\ds/g, 'DONE X.Xs').replace(/sha256:[a-f0-9]{64}/g, 'sha256:ID');

  it('plain, then CACHED on the second build; auto is plain when stderr is not a terminal or CI is set', async () => {
    const first = await cli(['--root', root, '--progress', 'plain', '-t', 'app:v1', ctx]);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('');
    const expected = (copy: string): string =>
      ['#1 [1/2] FROM scratch', '#1 DONE X.Xs', '', '#2 [2/2] COPY a.txt /a.txt', copy, '', '#3 exporting to image', '#3 writing image sha256:ID done', '#3 naming to docker.io/library/app:v1 done', '#3 DONE X.Xs', ''].join('\n');
    expect(normalise(first.stderr)).toBe(expected('#2 DONE X.Xs'));
    const second = await cli(['--root', root, '-t', 'app:v1', ctx]);
    expect(normalise(second.stderr)).toBe(expected('#2 CACHED'));
    const ci = await cli(['--root', root, '-t', 'app:v1', ctx], { env: { CI: 'true', PATH: process.env.PATH ?? '' } });
    expect(normalise(ci.stderr)).toBe(expected('#2 CACHED'));
  });

  it('json lines on stdout, one per event', async () => {
    const r = await cli(['--root', root, '--progress', 'json', '-t', 'app:v1', ctx]);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as BuildEvent & { time: string });
    expect(events.map((e) => e.type)).toEqual(['step-start', 'step-done', 'step-start', 'step-cached', 'build-done']);
    for (const e of events) expect(Date.parse(e.time)).not.toBeNaN();
    expect(events[2]).toMatchObject({ type: 'step-start', id: 2, stage: '', index: 2, total: 2, text: 'COPY a.txt /a.txt' });
    expect(events[4]).toMatchObject({ type: 'build-done', tags: ['docker.io/library/app:v1'] });
  });

  it('quiet and -q print only the image ID', async () => {
    for (const flag of [['-q'], ['--progress', 'quiet']]) {
      const r = await cli(['--root', root, ...flag, ctx]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    }
  });
});
