/**
 * Details where sweeps of real-world Dockerfiles found tsbuild differing from BuildKit: COPY
 * heredoc expansion, STOPSIGNAL validation, the place of a re-declared ARG in RUN history, an ARG
 * after an ENV of the same name, the config as Go's encoder writes it, and directory mtimes in
 * COPY, WORKDIR and RUN layers.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Digest, Manifest } from '../../src/image/index.js';
import { failure, imageOf, readInImage, runBuild, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();
/** 2001-09-09T01:46:40Z as busybox touch -t takes it (the sandbox has no TZ: UTC). */
const OLD = { stamp: '200109090146.40', seconds: 1_000_000_000 };

/** mtime (seconds) of `path` inside the snapshot of layer `index` of the image. */
async function mtimeInLayer(manifestDigest: Digest, index: number, path: string): Promise<number | undefined> {
  const { config } = await imageOf(fx.store, manifestDigest);
  const diffId = config.rootfs.diff_ids[index];
  if (diffId === undefined) throw new Error(`no layer ${index}`);
  const st = await stat(join(fx.store.snapshots.path(diffId), path)).catch(() => undefined);
  return st === undefined ? undefined : Math.floor(st.mtimeMs / 1000);
}

describe('COPY/ADD heredocs', () => {
  it('expand variables when the delimiter is unquoted, keeping quotes and taking backslash as the escape', async () => {
    const dir = await fx.ctx({
      Dockerfile: [
        '# escape=`',
        'FROM busybox:local',
        'ENV GREETING=hi',
        'ARG WHO=world',
        'COPY <<EOF /x',
        `echo $GREETING \${WHO:-x} "q $GREETING" 'sq $GREETING' \\$GREETING a\\\\b $UNSET.`,
        'EOF',
        'COPY <<"EOF" /y',
        'echo $GREETING',
        'EOF',
        'ADD <<EOF /z',
        '${GREETING}',
        'EOF',
        '',
      ].join('\n'),
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const { view } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/x')).toBe(`echo hi world "q hi" 'sq hi' $GREETING a\\b .\n`);
    expect(await readInImage(view, '/y')).toBe('echo $GREETING\n');
    expect(await readInImage(view, '/z')).toBe('hi\n');
  });

  it('a changed variable changes the file, so the step misses the cache', async () => {
    const dockerfile = 'FROM busybox:local\nARG V\nCOPY <<EOF /v\n$V\nEOF\n';
    const dir = await fx.ctx({ Dockerfile: dockerfile });
    const one = await runBuild(fx.store, { contextDir: dir, buildArgs: { V: 'one' } });
    const two = await runBuild(fx.store, { contextDir: dir, buildArgs: { V: 'two' } });
    expect(await readInImage((await imageOf(fx.store, one.result.manifestDigest)).view, '/v')).toBe('one\n');
    expect(await readInImage((await imageOf(fx.store, two.result.manifestDigest)).view, '/v')).toBe('two\n');
  });
});

describe('STOPSIGNAL', () => {
  it('takes a known name (any case, SIG optional) or a non-zero number', async () => {
    for (const signal of ['SIGTERM', 'kill', 'sigrtmin+3', '9']) {
      const dir = await fx.ctx({ Dockerfile: `FROM busybox:local\nSTOPSIGNAL ${signal}\n` });
      const { result } = await runBuild(fx.store, { contextDir: dir });
      expect(result.config.config?.StopSignal).toBe(signal);
    }
  });

  it('refuses anything else with the line, as BuildKit does', async () => {
    for (const signal of ['SIGNOPE', '0', 'RTMIN+16']) {
      const dir = await fx.ctx({ Dockerfile: `FROM busybox:local\nSTOPSIGNAL ${signal}\n` });
      const err = await failure(runBuild(fx.store, { contextDir: dir }));
      expect(err.code).toBe('DOCKERFILE');
      expect(err.message).toContain(`Invalid signal: ${signal}`);
      expect(err.line).toBe(2);
    }
  });
});

describe('EXPOSE', () => {
  it('words a port out of range or a reversed range as go-connections does', async () => {
    for (const port of ['99999', '5-3', '1-70000/udp']) {
      const dir = await fx.ctx({ Dockerfile: `FROM busybox:local\nEXPOSE 80 ${port}\n` });
      const err = await failure(runBuild(fx.store, { contextDir: dir }));
      expect(err.message).toContain(`invalid containerPort: ${port.replace(/\/.*/, '')}`);
      expect(err.line).toBe(2);
    }
  });
});

describe('RUN history', () => {
  it('a re-declared ARG keeps its first place in the |N prefix, with its new value', async () => {
    const dir = await fx.ctx({ Dockerfile: 'FROM busybox:local\nARG A=1\nARG B=2\nARG A=3\nRUN echo "$A$B" > /ab\n' });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    expect(result.config.history?.at(-1)?.created_by).toBe('RUN |2 A=3 B=2 /bin/sh -c echo "$A$B" > /ab # buildkit');
    expect(await readInImage((await imageOf(fx.store, result.manifestDigest)).view, '/ab')).toBe('32\n');
  });
});

describe('file names that are not UTF-8', () => {
  it('fail the step naming the file, bytes escaped, instead of a confusing ENOENT', async () => {
    const dir = await fx.ctx({ Dockerfile: `FROM busybox:local\nRUN touch "/latin1-$(printf '\\351')"\n` });
    const err = await failure(runBuild(fx.store, { contextDir: dir }));
    expect(err.message).toContain('a file name that is not valid UTF-8 cannot be stored');
    expect(err.message).toContain('/latin1-\\xe9');
  });
});

describe('ARG and ENV of the same name', () => {
  it('whichever came last wins for RUN and expansion; the config keeps the ENV', async () => {
    const dir = await fx.ctx({
      Dockerfile: [
        'FROM busybox:local',
        'ENV V=fromenv U=envu',
        'ARG V=fromarg',
        'ARG U',
        'RUN echo "V=$V U=$U" > /out',
        'ENV W=$V',
        'ENV V=again',
        'RUN echo "V=$V" > /out2',
        '',
      ].join('\n'),
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const { view, config } = await imageOf(fx.store, result.manifestDigest);
    expect(await readInImage(view, '/out')).toBe('V=fromarg U=envu\n');
    expect(await readInImage(view, '/out2')).toBe('V=again\n');
    expect(config.config?.Env).toEqual(expect.arrayContaining(['U=envu', 'W=fromarg', 'V=again']));
    const runs = (config.history ?? []).filter((h) => h.created_by?.startsWith('RUN ') === true).map((h) => h.created_by);
    expect(runs.at(-2)).toBe('RUN |2 V=fromarg U=envu /bin/sh -c echo "V=$V U=$U" > /out # buildkit');
    const cli = await runBuild(fx.store, { contextDir: dir, buildArgs: { V: 'cli' } });
    expect(await readInImage((await imageOf(fx.store, cli.result.manifestDigest)).view, '/out')).toBe('V=cli U=envu\n');
  });
});

describe('the config as Go writes it', () => {
  it('drops empty Cmd and Entrypoint and sorts map keys', async () => {
    const dir = await fx.ctx({
      Dockerfile: 'FROM busybox:local AS one\nENTRYPOINT ["/bin/sh"]\nCMD ["-c", "true"]\nFROM one\nENTRYPOINT []\nCMD []\nLABEL z=1 a=2\nVOLUME /zz /aa\n',
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const manifest = await fx.store.blobs.readJson<Manifest>(result.manifestDigest);
    const raw = (await readFile(fx.store.blobs.path(manifest.config.digest))).toString();
    const parsed = JSON.parse(raw) as { config: Record<string, unknown> };
    // Go's field order; no Entrypoint or Cmd at all. WorkingDir "/" is BuildKit's for FROM scratch.
    expect(Object.keys(parsed.config)).toEqual(['Env', 'Volumes', 'WorkingDir', 'Labels', 'ArgsEscaped']);
    expect(raw).toContain('"Labels":{"a":"2","z":"1"}');
    expect(raw).toContain('"Volumes":{"/aa":{},"/zz":{}}');
  });
});

describe('directory mtimes in layers', () => {
  it('COPY and WORKDIR keep an untouched ancestor time; the dir that gains an entry gets a new one', async () => {
    const dir = await fx.ctx({
      Dockerfile: `FROM busybox:local\nRUN mkdir -p /a/b && touch -t ${OLD.stamp} /a/b /a\nCOPY f /a/b/f\nWORKDIR /a/b/c/d\n`,
      f: 'x',
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const layers = result.config.rootfs.diff_ids.length;
    const copy = layers - 2;
    const workdir = layers - 1;
    expect(await mtimeInLayer(result.manifestDigest, copy, 'a')).toBe(OLD.seconds);
    expect(await mtimeInLayer(result.manifestDigest, copy, 'a/b')).toBeGreaterThan(OLD.seconds);
    expect(await mtimeInLayer(result.manifestDigest, workdir, 'a')).toBe(OLD.seconds);
    expect(await mtimeInLayer(result.manifestDigest, workdir, 'a/b')).toBeGreaterThan(OLD.seconds);
  });

  it('a RUN that adds to a dir holding a mount stub keeps the new time; one that does not leaves no trace', async () => {
    // busybox has /etc but no /etc/hosts: the sandbox puts a stub there for the run.
    const dir = await fx.ctx({
      Dockerfile: `FROM busybox:local\nRUN touch -t ${OLD.stamp} /etc\nRUN echo x > /etc/added\nRUN true\n`,
    });
    const { result } = await runBuild(fx.store, { contextDir: dir });
    const layers = result.config.rootfs.diff_ids.length;
    expect(await mtimeInLayer(result.manifestDigest, layers - 3, 'etc')).toBe(OLD.seconds);
    expect(await mtimeInLayer(result.manifestDigest, layers - 2, 'etc')).toBeGreaterThan(OLD.seconds);
    expect(await mtimeInLayer(result.manifestDigest, layers - 2, 'etc/hosts')).toBeUndefined();
    expect(await mtimeInLayer(result.manifestDigest, layers - 1, 'etc')).toBeUndefined();
  });
});
