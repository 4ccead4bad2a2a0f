/** Config and history as BuildKit writes them, --label, --iidfile/--metadata-file/-q, parallel stages, --target, step error locations. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../src/builder/events.js';
import { build } from '../../src/builder/execute.js';
import { parseGoDuration } from '../../src/builder/meta.js';
import { isTsbuildError } from '../../src/util/errors.js';
import { runCli } from './cli-helpers.js';
import { useBusyboxStore, imageOf, readInImage, runBuild, tempDir } from './helpers.js';

const fx = useBusyboxStore();
const { ctx } = fx;
const baseHistory = (): number => fx.base.config.history?.length ?? 0;

describe('config and history like BuildKit', () => {
  it('writes created_by, empty_layer, comment, author, labels and config fields', async () => {
    const dir = await ctx({
      Dockerfile: [
        'FROM busybox:local',
        'MAINTAINER Jane <jane@example.com>',
        'LABEL a=1 "b c"="two words"',
        'ENV X=1 Y="y y"',
        'ARG V=dflt',
        'EXPOSE 80 53/UDP 127.0.0.1:8080:9000/tcp 7000-7001/SCTP',
        'VOLUME ["/data", "/logs"]',
        'SHELL ["/bin/sh", "-ec"]',
        'USER app',
        'WORKDIR /srv',
        'RUN echo "$V" > out',
        'STOPSIGNAL SIGTERM',
        'HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD wget -q localhost || exit 1',
        'CMD ["serve"]',
        'ENTRYPOINT ["/bin/app"]',
        '',
      ].join('\n'),
    });
    const { result } = await runBuild(fx.store, { contextDir: dir, labels: { a: 'override', build: 'yes' } });
    const { config, view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/srv/out')).toBe('dflt\n');
    expect(config.author).toBe('Jane <jane@example.com>');
    const own = (config.history ?? []).slice(baseHistory());
    expect(own.map((h) => [h.created_by, h.empty_layer === true, h.comment])).toEqual([
      ['MAINTAINER Jane <jane@example.com>', true, 'buildkit.dockerfile.v0'],
      ['LABEL a=1 b c=two words', true, 'buildkit.dockerfile.v0'],
      ['ENV X=1 Y=y y', true, 'buildkit.dockerfile.v0'],
      ['ARG V=dflt', true, 'buildkit.dockerfile.v0'],
      // BuildKit's parser sorts the EXPOSE words as written, then each is normalised.
      ['EXPOSE [9000/tcp 53/udp 7000/sctp 7001/sctp 80/tcp]', true, 'buildkit.dockerfile.v0'],
      ['VOLUME [/data /logs]', true, 'buildkit.dockerfile.v0'],
      ['SHELL [/bin/sh -ec]', true, 'buildkit.dockerfile.v0'],
      ['USER app', true, 'buildkit.dockerfile.v0'],
      ['WORKDIR /srv', false, 'buildkit.dockerfile.v0'],
      ['RUN |1 V=dflt /bin/sh -ec echo "$V" > out # buildkit', false, 'buildkit.dockerfile.v0'],
      ['STOPSIGNAL SIGTERM', true, 'buildkit.dockerfile.v0'],
      ['HEALTHCHECK {Test:[CMD-SHELL wget -q localhost || exit 1] Interval:30s Timeout:5s StartPeriod:0s StartInterval:0s Retries:3}', true, 'buildkit.dockerfile.v0'],
      ['CMD ["serve"]', true, 'buildkit.dockerfile.v0'],
      ['ENTRYPOINT ["/bin/app"]', true, 'buildkit.dockerfile.v0'],
    ]);
    const cc = config.config;
    expect(cc?.Labels).toEqual({ a: 'override', 'b c': 'two words', build: 'yes' });
    expect(cc?.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '9000/tcp': {}, '7000/sctp': {}, '7001/sctp': {} });
    expect(cc?.Volumes).toEqual({ '/data': {}, '/logs': {} });
    expect(cc?.Shell).toEqual(['/bin/sh', '-ec']);
    expect(cc?.User).toBe('app');
    expect(cc?.WorkingDir).toBe('/srv');
    expect(cc?.StopSignal).toBe('SIGTERM');
    expect(cc?.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 30e9, Timeout: 5e9, Retries: 3 });
    // CMD set earlier in the same stage survives ENTRYPOINT.
    expect(cc?.Cmd).toEqual(['serve']);
    expect(cc?.Entrypoint).toEqual(['/bin/app']);
    expect(cc?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'X=1', 'Y=y y']);
  });

  it('fills metadata times from the layer steps, so a fully cached rebuild has the same image ID', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nENV A=1\nRUN echo t > /t\nLABEL l=1\nCMD ["x"]\n' });
    const first = await runBuild(fx.store, { contextDir: dir });
    const own = (first.result.config.history ?? []).slice(baseHistory());
    expect(own.map((h) => h.created_by)).toEqual(['ENV A=1', 'RUN /bin/sh -c echo t > /t # buildkit', 'LABEL l=1', 'CMD ["x"]']);
    const runTime = own[1]?.created;
    expect(runTime).toMatch(/^\d{4}-/);
    expect(own.map((h) => h.created)).toEqual([runTime, runTime, runTime, runTime]);
    expect(first.result.config.created).toBe(runTime);
    await new Promise((r) => setTimeout(r, 20));
    const again = await runBuild(fx.store, { contextDir: dir });
    expect(again.result.manifestDigest).toBe(first.result.manifestDigest);
  });

  it('ENTRYPOINT resets an inherited CMD; a later CMD sets it again', async () => {
    const reset = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: 'FROM busybox:local\nENTRYPOINT ["/bin/echo"]\n' }) });
    expect(reset.result.config.config?.Cmd ?? null).toBeNull();
    const again = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: 'FROM busybox:local\nENTRYPOINT echo\nCMD ["x"]\n' }) });
    expect(again.result.config.config?.Entrypoint).toEqual(['/bin/sh', '-c', 'echo']);
    expect(again.result.config.config?.Cmd).toEqual(['x']);
  });

  it('rejects an empty VOLUME and a bad EXPOSE protocol with the Dockerfile line', async () => {
    for (const [line, msg] of [['VOLUME ""', 'VOLUME specified can not be an empty string'], ['EXPOSE 80/xyz', 'invalid proto: xyz']] as const) {
      const err = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: `FROM busybox:local\n${line}\n` }) }).catch((e: unknown) => e);
      expect(isTsbuildError(err) && err.code).toBe('DOCKERFILE');
      expect(err).toMatchObject({ message: msg, line: 2, excerpt: line });
    }
  });
});

describe('Go durations (HEALTHCHECK flags)', () => {
  it('reads every unit Go accepts, micro sign included, and refuses the rest', () => {
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('1.5h')).toBe(5400e9);
    expect(parseGoDuration('2\u00b5s')).toBe(2000); // micro sign
    expect(parseGoDuration('2\u03bcs')).toBe(2000); // Greek mu
    expect(parseGoDuration('3us500ns')).toBe(3500);
    expect(() => parseGoDuration('5 s')).toThrow();
    expect(() => parseGoDuration('5d')).toThrow();
  });
});

describe('CLI results', () => {
  it('--iidfile, --metadata-file as buildx writes them, and -q prints only the image ID', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\nRUN echo q > /q\n' });
    const out = await tempDir('meta');
    fx.cleanup.push(out);
    const iid = join(out, 'iid');
    const meta = join(out, 'meta.json');
    const r = await runCli(['--root', fx.root, 'build', '-q', '-t', 'meta:1', '--iidfile', iid, '--metadata-file', meta, dir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const id = await readFile(iid, 'utf8');
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stdout.toString()).toBe(`${id}\n`);
    const doc = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
    const desc = await fx.store.tags.get('docker.io/library/meta:1');
    expect(doc).toEqual({
      'containerimage.config.digest': id,
      'containerimage.descriptor': { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: desc?.digest, size: desc?.size },
      'containerimage.digest': desc?.digest,
      'image.name': 'docker.io/library/meta:1',
    });
  });
});

describe('multi-stage', () => {
  const df = [
    'FROM busybox:local AS a', 'RUN sleep 1 && echo a > /a',
    'FROM busybox:local AS b', 'RUN sleep 1 && echo b > /b',
    'FROM busybox:local AS unused', 'RUN echo never > /never',
    'FROM busybox:local', 'COPY --from=a /a /a', 'COPY --from=b /b /b', '',
  ].join('\n');

  it('runs only the stages the target needs, the independent ones in parallel', async () => {
    const { result, events } = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: df }), noCache: true });
    const starts = events.filter((e): e is Extract<BuildEvent, { type: 'step-start' }> => e.type === 'step-start');
    expect(starts.some((e) => e.stage === 'unused')).toBe(false);
    const runId = (stage: string): number => starts.find((e) => e.stage === stage && e.text.startsWith('RUN'))?.id ?? -1;
    const order = events.flatMap((e) => ((e.type === 'step-start' || e.type === 'step-done') && (e.id === runId('a') || e.id === runId('b')) ? [`${e.type}:${e.id === runId('a') ? 'a' : 'b'}`] : []));
    // Both `sleep 1` steps start before either finishes: they overlap.
    expect(order.slice(0, 2).sort()).toEqual(['step-start:a', 'step-start:b']);
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/a')).toBe('a\n');
    expect(await readInImage(view, '/b')).toBe('b\n');
  });

  it('--target builds that stage and what it needs only', async () => {
    const { result, events } = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: df }), target: 'b' });
    expect(new Set(events.flatMap((e) => (e.type === 'step-start' ? [e.stage] : [])))).toEqual(new Set(['b']));
    expect(await readInImage((await imageOf(fx.store, result.manifestDigest)).view, '/b')).toBe('b\n');
  });

  it('resolves a COPY --from image once per build', async () => {
    await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: 'FROM busybox:local\nRUN echo lib > /lib.txt\n' }), tags: ['docker.io/library/libimg:1'] });
    // The real store, with its tag lookups counted.
    const lookups: string[] = [];
    const tags = new Proxy(fx.store.tags, {
      get(target, prop, receiver): unknown {
        const v: unknown = Reflect.get(target, prop, receiver);
        if (prop !== 'get' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        return (name: string) => {
          lookups.push(name);
          return (v as (n: string) => unknown).call(target, name);
        };
      },
    });
    const counted = new Proxy(fx.store, { get: (target, prop, receiver): unknown => (prop === 'tags' ? tags : Reflect.get(target, prop, receiver)) });
    const result = await build(
      { contextDir: await ctx({ Dockerfile: 'FROM busybox:local\nCOPY --from=libimg:1 /lib.txt /one\nCOPY --from=libimg:1 /lib.txt /two\nCOPY --from=libimg:1 /lib.txt /three\n' }) },
      { store: counted },
    );
    expect(lookups.filter((n) => n === 'docker.io/library/libimg:1')).toHaveLength(1);
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/two')).toBe('lib\n');
  });
});

describe('step failures carry their Dockerfile location', () => {
  it('a failing RUN, COPY or ADD names file, line and instruction; the CLI prints --> Dockerfile:N', async () => {
    const dir = await ctx({ Dockerfile: 'FROM busybox:local\n\n# build it\nRUN echo working \\\n && exit 4\n' });
    const err = await runBuild(fx.store, { contextDir: dir }).catch((e: unknown) => e);
    expect(isTsbuildError(err) && err.code).toBe('RUN_FAILED');
    expect(err).toMatchObject({ file: 'Dockerfile', line: 4, endLine: 5, excerpt: 'RUN echo working \\' });
    const cli = await runCli(['--root', fx.root, 'build', '--progress', 'quiet', dir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(' --> Dockerfile:4\n     4 | RUN echo working \\\n');
    for (const [line, code] of [['COPY missing.txt /x', 'CONTEXT'], ['ADD nothere /y', 'CONTEXT']] as const) {
      const e = await runBuild(fx.store, { contextDir: await ctx({ Dockerfile: `FROM busybox:local\nENV A=1\n${line}\n` }) }).catch((x: unknown) => x);
      expect(isTsbuildError(e) && e.code).toBe(code);
      expect(e).toMatchObject({ file: 'Dockerfile', line: 3, excerpt: line });
    }
  });
});
