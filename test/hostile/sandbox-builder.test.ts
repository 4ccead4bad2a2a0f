// Sandbox escapes through Dockerfile instructions (WORKDIR, USER, RUN --mount), each test named
// after the advisory whose class it proves closed. Real builds on a busybox base into a real store.
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../src/builder/events.js';
import { build, type BuildRequest } from '../../src/builder/execute.js';
import type { Store } from '../../src/store/index.js';
import { buildBusybox, imageOf, makeContext, newStore, readInImage, tempDir } from '../builder/helpers.js';
import { hostMounts } from '../sandbox/helpers.js';

let store: Store;
let root: string;
let hostDir: string;
const cleanup: string[] = [];

beforeAll(async () => {
  ({ store, root } = await newStore());
  hostDir = await tempDir('hostile-host');
  cleanup.push(root, hostDir);
  await buildBusybox(store);
});

afterAll(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

interface Outcome {
  error?: { code: string; message: string };
  log: string;
  manifestDigest?: string;
}

/** Builds `dockerfile` (plus context files) and returns the error (if any) and all step output. */
async function tryBuild(dockerfile: string, files: Record<string, string> = {}, extra: Partial<BuildRequest> = {}, setup?: (ctx: string) => void): Promise<Outcome> {
  const ctx = await makeContext({ Dockerfile: dockerfile, ...files });
  cleanup.push(ctx);
  setup?.(ctx);
  let log = '';
  const onEvent = (e: BuildEvent): void => {
    if (e.type === 'step-log') log += e.data;
  };
  try {
    const result = await build({ contextDir: ctx, noCache: true, ...extra }, { store }, { onEvent });
    return { log, manifestDigest: result.manifestDigest };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { log, error: { code: e.code ?? '', message: e.message ?? String(err) } };
  }
}

const unique = (): string => `${process.pid}-${Math.floor(Math.random() * 1e9)}`;

describe('CVE-2024-21626 through WORKDIR', () => {
  for (const dir of ['/proc/self/fd/7', '/proc/self/cwd', '/proc/1/root/etc']) {
    it(`WORKDIR ${dir} then RUN fails clearly instead of reaching the host`, async () => {
      const before = hostMounts(root, hostDir);
      const out = await tryBuild(`FROM busybox:local\nWORKDIR ${dir}\nRUN pwd; ls\n`);
      expect(out.error).toMatchObject({ code: 'SANDBOX', message: expect.stringContaining(`working directory ${dir}: `) as unknown });
      expect(out.log).toBe('');
      expect(hostMounts(root, hostDir)).toBe(before);
    });
  }
});

describe('CVE-2024-40635 through USER', () => {
  for (const user of ['4294967296', '-1', '2147483648', 'app:4294967296']) {
    it(`USER ${user} fails clearly and never runs as root`, async () => {
      const out = await tryBuild(`FROM busybox:local\nUSER ${user}\nRUN id -u\n`);
      expect(out.error).toEqual({ code: 'SANDBOX', message: 'uids and gids must be in range 0-2147483647' });
      expect(out.log).toBe('');
    });
  }

  it('USER and COPY --chown names are looked up inside the rootfs when /etc/passwd links to a host file', async () => {
    const hostPasswd = join(hostDir, 'passwd');
    await writeFile(hostPasswd, 'hostuser:x:4242:4242::/:/bin/sh\nroot:*:19000:0:99999:7:::\n');
    const base = `FROM busybox:local\nRUN ln -sf ${hostPasswd} /etc/passwd && ln -sf ${hostPasswd} /etc/group\n`;
    const user = await tryBuild(`${base}USER hostuser\nRUN id -u\n`);
    expect(user.error).toEqual({ code: 'SANDBOX', message: 'unable to find user hostuser: no matching entries in passwd file' });
    const root = await tryBuild(`${base}USER root\nRUN id -u\n`);
    expect(root.error?.message).toBe('unable to find user root: no matching entries in passwd file');
    const chown = await tryBuild(`${base}COPY --chown=hostuser:hostuser f /f\n`, { f: 'x' });
    expect(chown.error).toBeUndefined();
    const { view } = await imageOf(store, chown.manifestDigest ?? '');
    const f = await view.resolve('/f', false);
    expect([f.entry?.stat.uid, f.entry?.stat.gid]).toEqual([0, 0]); // unknown inside the image: 0, never 4242
  });
});

describe('CVE-2024-9675 (cache mount ids and paths)', () => {
  it('id=../../.. and target/source with .. keep the cache inside the store cache area', async () => {
    const marker = `marker-${unique()}`;
    const escapeDir = join(hostDir, `escape-${unique()}`);
    const out = await tryBuild(
      'FROM busybox:local\n' +
        `RUN --mount=type=cache,id=../../../../../..${hostDir},target=/c touch /c/${marker}\n` +
        `RUN --mount=type=cache,id=x,target=/../../../../..${escapeDir},source=../../../../.. touch ${escapeDir}/${marker} && ls /c 2>/dev/null | wc -l\n`,
    );
    expect(out.error).toBeUndefined();
    expect(readdirSync(hostDir).filter((n) => n.includes('marker') || n.startsWith('escape'))).toEqual([]);
    expect(existsSync(escapeDir)).toBe(false);
    const caches = join(root, 'cache-mounts');
    const holders = readdirSync(caches).filter((d) => existsSync(join(caches, d, marker)));
    expect(holders).toHaveLength(2);
    for (const d of holders) expect(d).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('CVE-2024-1753 (bind and secret sources through symlinks)', () => {
  const shadow = existsSync('/etc/shadow') ? readFileSync('/etc/shadow', 'utf8').split('\n')[0] ?? '' : 'root:';

  it('a context symlink to a host file is not a bind source', async () => {
    const out = await tryBuild('FROM busybox:local\nRUN --mount=type=bind,source=link,target=/x cat /x\n', {}, {}, (ctx) => symlinkSync('/etc/shadow', join(ctx, 'link')));
    expect(out.error).toMatchObject({ code: 'CONTEXT', message: expect.stringContaining('not found in the build context') as unknown });
    expect(out.log).not.toContain(shadow);
  });

  it('a context symlink to / binds the context root, never the host root', async () => {
    const out = await tryBuild('FROM busybox:local\nRUN --mount=type=bind,source=up,target=/x ls /x; cat /x/etc/shadow || echo no-shadow\n', { 'only-in-context': '' }, {}, (ctx) =>
      symlinkSync('../../../../../..', join(ctx, 'up')),
    );
    expect(out.error).toBeUndefined();
    expect(out.log).toContain('only-in-context');
    expect(out.log).toContain('no-shadow');
    expect(out.log).not.toContain(shadow);
  });

  it('device nodes from a layer, a mknod in /dev or in a cache mount open nothing; the standard devices do', async () => {
    // c 1:11 is /dev/kmsg: writable, it put a layer's text into the host kernel log (red-teamed).
    const out = await tryBuild(
      [
        'FROM busybox:local',
        'RUN mknod /kmsg c 1 11 && mknod /nul c 1 3',
        'RUN echo x > /kmsg; echo "layer kmsg $?"; echo x > /nul; echo "layer null $?"',
        'RUN mknod /dev/k c 1 11 && echo x > /dev/k; echo "dev kmsg $?"',
        'RUN --mount=type=cache,target=/c mknod /c/k c 1 3; echo x > /c/k; echo "cache node $?"; rm -f /c/k',
        'RUN echo x > /dev/null && head -c 8 /dev/urandom | wc -c && head -c 3 /dev/zero | wc -c && echo devices-ok',
        '',
      ].join('\n'),
    );
    expect(out.error).toBeUndefined();
    for (const line of ['layer kmsg 1', 'layer null 1', 'dev kmsg 1', 'cache node 1', 'devices-ok']) expect(out.log).toContain(line);
    expect(out.log).toMatch(/can't create \/kmsg: Permission denied/);
  });

  it('a bind source climbing out of the context stops at its root', async () => {
    const out = await tryBuild('FROM busybox:local\nRUN --mount=type=bind,source=../../../../etc,target=/x cat /x/shadow\n');
    expect(out.error).toMatchObject({ code: 'CONTEXT', message: expect.stringContaining('"/etc": not found in the build context') as unknown });
    const inside = await tryBuild('FROM busybox:local\nRUN --mount=type=bind,source=../../etc,target=/x cat /x/shadow\n', { 'etc/shadow': 'context-shadow' });
    expect(inside.error).toBeUndefined();
    expect(inside.log).toContain('context-shadow');
    expect(inside.log).not.toContain(shadow);
  });

  it('a secret id naming a host path mounts nothing; required fails before running', async () => {
    const out = await tryBuild('FROM busybox:local\nRUN --mount=type=secret,id=/etc/shadow cat /run/secrets//etc/shadow || echo no-secret\n');
    expect(out.error).toBeUndefined();
    expect(out.log).toContain('no-secret');
    expect(out.log).not.toContain(shadow);
    const req = await tryBuild('FROM busybox:local\nRUN --mount=type=secret,id=../../../etc/shadow,required=true cat /run/secrets/x\n');
    expect(req.error).toMatchObject({ code: 'USAGE', message: expect.stringContaining('is required') as unknown });
  });

  it('a secret target with .. stays inside the rootfs', async () => {
    const secret = join(hostDir, 'secret.txt');
    await writeFile(secret, 's3cret\n');
    const target = join(hostDir, `planted-${unique()}`);
    const out = await tryBuild(`FROM busybox:local\nRUN --mount=type=secret,id=tok,target=/../../../..${target} cat ${target}\n`, {}, { secrets: { tok: secret } });
    expect(out.error).toBeUndefined();
    expect(out.log).toBe('s3cret\n');
    expect(existsSync(target)).toBe(false);
  });
});

describe('bind,rw (BuildKit: writes are discarded)', () => {
  it('never writes to the host build context, for a dir or a file source', async () => {
    let ctxDir = '';
    const out = await tryBuild(
      'FROM busybox:local\n' +
        'RUN --mount=type=bind,rw,target=/ctx --mount=type=bind,source=file,rw,target=/one ' +
        'echo new > /ctx/added && rm /ctx/keep && echo changed > /ctx/file && echo changed > /one && cat /ctx/added /ctx/file /one && ls /ctx | tr "\\n" " "\n',
      { keep: 'keep\n', file: 'orig\n' },
      {},
      (ctx) => (ctxDir = ctx),
    );
    expect(out.error).toBeUndefined();
    expect(out.log).toBe('new\nchanged\nchanged\nDockerfile added file ');
    expect(readdirSync(ctxDir).sort()).toEqual(['Dockerfile', 'file', 'keep']);
    expect(readFileSync(join(ctxDir, 'file'), 'utf8')).toBe('orig\n');
    const { view } = await imageOf(store, out.manifestDigest ?? '');
    expect((await view.resolve('/ctx/added', false)).entry).toBeUndefined();
  });
});

describe('mount stubs never reach the layer', () => {
  it('a RUN with mounts commits only its own changes', async () => {
    const out = await tryBuild('FROM busybox:local\nRUN --mount=type=tmpfs,target=/deep/tmp --mount=type=cache,target=/var/cache/x echo hi > /made\n');
    expect(out.error).toBeUndefined();
    const { view, config } = await imageOf(store, out.manifestDigest ?? '');
    expect(await readInImage(view, '/made')).toBe('hi\n');
    for (const p of ['/etc/hosts', '/etc/resolv.conf', '/proc', '/dev', '/sys', '/deep', '/var/cache/x']) {
      expect((await view.resolve(p, false)).entry, p).toBeUndefined();
    }
    const topDiff = config.rootfs.diff_ids.at(-1);
    if (topDiff === undefined) throw new Error('no layers');
    const top = store.snapshots.path(topDiff);
    expect(readdirSync(top)).toEqual(['made']);
    expect(statSync(join(top, 'made')).isFile()).toBe(true);
  });
});
