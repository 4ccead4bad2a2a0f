/**
 * COPY semantics against BuildKit's (docs/buildkit-semantics.md §4), on real builds into a real
 * store: wildcards, directory contents, trailing slashes, --chown/--chmod (octal and symbolic),
 * --exclude, --parents, symlinks, hard links, special files, refusals with clear errors.
 */
import { chmod, link, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getXattr, setXattr } from '../../src/util/xattr.js';
import { describeTree, flattenImage, type TreeNode } from '../differential/helpers.js';
import { useBusyboxStore, makeContext, runBuild, tempDir } from './helpers.js';

const fx = useBusyboxStore();

/** Builds `dockerfile` over `files` and returns the flattened rootfs as path → node. */
async function buildTree(dockerfile: string, files: Record<string, string> = {}, prepare?: (ctx: string) => Promise<void>): Promise<Map<string, TreeNode>> {
  const ctx = await makeContext({ Dockerfile: dockerfile, ...files });
  fx.cleanup.push(ctx);
  await prepare?.(ctx);
  const { result } = await runBuild(fx.store, { contextDir: ctx });
  const dir = await tempDir('flat');
  fx.cleanup.push(dir);
  await flattenImage(fx.store, result.manifestDigest, dir);
  return describeTree(dir);
}

async function buildError(dockerfile: string, files: Record<string, string> = {}, prepare?: (ctx: string) => Promise<void>): Promise<Error> {
  const ctx = await makeContext({ Dockerfile: dockerfile, ...files });
  fx.cleanup.push(ctx);
  await prepare?.(ctx);
  return runBuild(fx.store, { contextDir: ctx }).then(() => new Error('build succeeded'), (err: unknown) => err as Error);
}

const FILES = { 'a.txt': 'A', 'b.txt': 'B', 'c.md': 'C', 'dir/x': 'X', 'dir/sub/y': 'Y', 'dir/notes.md': 'N' };

describe('COPY source and destination rules', () => {
  it('wildcards, directory contents, trailing slashes and empty wildcards', async () => {
    const t = await buildTree(
      'FROM busybox:local\nCOPY *.txt /w/\nCOPY dir /d\nCOPY a.txt /f\nCOPY a.txt /existing-dir-less/\nCOPY nomatch* /n/\nCOPY [ab].txt c.md /m/\n',
      FILES,
    );
    expect([...t.keys()].filter((p) => /^\/(w|d|f|n|m|existing-dir-less)(\/|$)/.test(p))).toEqual([
      '/d', '/d/notes.md', '/d/sub', '/d/sub/y', '/d/x',
      '/existing-dir-less', '/existing-dir-less/a.txt',
      '/f',
      '/m', '/m/a.txt', '/m/b.txt', '/m/c.md',
      '/w', '/w/a.txt', '/w/b.txt',
    ]);
    expect(t.get('/f')).toMatchObject({ type: 'file', owner: '0:0' });
    // The destination of a dir copy is made 0755 root, never given the source dir's attributes.
    expect(t.get('/d')).toMatchObject({ type: 'dir', mode: '755', owner: '0:0' });
  });

  it('several sources into a destination without a slash go to that one path in turn, as in BuildKit', async () => {
    // BuildKit never had the classic builder's "must be a directory and end with a /" check
    // (moby/buildkit#1853): each source is its own copy to the same path, so the last file wins.
    const t = await buildTree('FROM busybox:local\nCOPY a.txt b.txt /one\nCOPY *.txt /wild\nRUN mkdir /isdir\nCOPY a.txt b.txt /isdir\n', FILES);
    expect(t.get('/one')).toMatchObject({ type: 'file', data: t.get('/wild')?.data });
    expect(t.get('/isdir/a.txt')?.type).toBe('file');
    expect(t.get('/isdir/b.txt')?.type).toBe('file');
    const b = await buildTree('FROM busybox:local\nCOPY b.txt /only-b\n', FILES);
    expect(t.get('/one')?.data).toBe(b.get('/only-b')?.data);
  });

  it('refuses a file onto a directory the rootfs already has, and changes nothing', async () => {
    const err = await buildError('FROM busybox:local\nRUN mkdir -p /t/a.txt/inner\nCOPY a.txt /t/\n', FILES);
    expect(err.message).toContain('cannot replace to directory /t/a.txt with file');
  });

  it('`..` in a source stops at the context root, as in BuildKit', async () => {
    const t = await buildTree('FROM busybox:local\nCOPY ../a.txt /up\nCOPY dir/../../../b.txt ./../c.md /two/\n', FILES);
    const plain = await buildTree('FROM busybox:local\nCOPY a.txt /up\nCOPY b.txt c.md /two/\n', FILES);
    for (const path of ['/up', '/two/b.txt', '/two/c.md']) {
      expect(t.get(path)?.type).toBe('file');
      expect(t.get(path)?.data).toBe(plain.get(path)?.data);
    }
    const err = await buildError('FROM busybox:local\nCOPY ../../etc/passwd /x\n', FILES);
    expect(err.message).toContain('"/etc/passwd": not found in the build context');
  });

  it('a heredoc name never leaves its scratch dir: `..` stops there, a path is refused (COPY and RUN)', async () => {
    const outside = await tempDir('heredoc-victim');
    fx.cleanup.push(outside);
    const t = await buildTree('FROM busybox:local\nCOPY <<../../x.txt /h/\nhello\n../../x.txt\n');
    expect(t.get('/h/x.txt')?.type).toBe('file');
    for (const dockerfile of [
      `FROM busybox:local\nCOPY <<../../../../../../../..${outside}/pwned /x\nhost\n../../../../../../../..${outside}/pwned\n`,
      `FROM busybox:local\nRUN <<../../../../../../../..${outside}/pwned\n#!/bin/sh\necho x\n../../../../../../../..${outside}/pwned\n`,
    ]) {
      const err = await buildError(dockerfile);
      expect(err.message).toMatch(/heredoc name .* does not name one file/);
    }
    expect(await readdir(outside)).toEqual([]);
  });

  it('the Dockerfile of a local context may link anywhere, as the docker CLI follows it', async () => {
    const shared = await tempDir('df-shared');
    fx.cleanup.push(shared);
    await writeFile(join(shared, 'Dockerfile'), 'FROM busybox:local\nCOPY a.txt /a\n');
    const t = await buildTree('', { 'a.txt': 'A' }, async (ctx) => {
      await rm(join(ctx, 'Dockerfile'), { force: true });
      await symlink(join(shared, 'Dockerfile'), join(ctx, 'Dockerfile'));
    });
    expect(t.get('/a')?.type).toBe('file');
  });

  it('a missing source is an error naming it', async () => {
    const err = await buildError('FROM busybox:local\nCOPY nope.txt /x\n', FILES);
    expect(err.message).toContain('"/nope.txt": not found');
  });

  it('refuses URLs and git refs in COPY', async () => {
    expect((await buildError('FROM busybox:local\nCOPY http://127.0.0.1:1/x /x\n')).message).toBe('source can\'t be a URL for COPY');
    expect((await buildError('FROM busybox:local\nCOPY git@github.com:a/b.git /x\n')).message).toBe('source can\'t be a git ref for COPY');
  });
});

describe('COPY ownership and modes', () => {
  it('--chown by name, ids and name:group, resolved in the image /etc/passwd and /etc/group', async () => {
    const t = await buildTree(
      'FROM busybox:local\nCOPY --chown=app a.txt /o1/new/a\nCOPY --chown=1:2 a.txt /o2\nCOPY --chown=app:nogroup dir /o3/\nCOPY --chown=ghost a.txt /o4\nARG U=app\nCOPY --chown=$U a.txt /o5\n',
      FILES,
    );
    expect(t.get('/o1/new/a')?.owner).toBe('1000:1000');
    expect(t.get('/o1')?.owner).toBe('1000:1000'); // created parents get the --chown user
    expect(t.get('/o2')?.owner).toBe('1:2');
    expect(t.get('/o3')?.owner).toBe('1000:65534');
    expect(t.get('/o3/sub/y')?.owner).toBe('1000:65534');
    expect(t.get('/o4')?.owner).toBe('0:0'); // unknown names are 0, as BuildKit's user_linux.go
    expect(t.get('/o5')?.owner).toBe('1000:1000');
    expect(t.get('/etc')?.owner).toBe('0:0'); // existing parents untouched
  });

  it('--chmod octal and symbolic apply to every copied node but not to created parents', async () => {
    const t = await buildTree('FROM busybox:local\nCOPY --chmod=640 a.txt /p/a\nCOPY --chmod=4755 a.txt /p/suid\nCOPY --chmod=u+x,go-r dir /s/\nCOPY --chmod=a=rX dir /r/\n', FILES, async (ctx) => {
      await chmod(join(ctx, 'dir/x'), 0o644);
      await chmod(join(ctx, 'dir/sub'), 0o755);
    });
    expect(t.get('/p/a')?.mode).toBe('640');
    expect(t.get('/p')?.mode).toBe('755');
    expect(t.get('/p/suid')?.mode).toBe('4755');
    expect(t.get('/s/x')?.mode).toBe('700');
    expect(t.get('/s/sub')?.mode).toBe('711');
    expect(t.get('/s')?.mode).toBe('755');
    expect(t.get('/r/x')?.mode).toBe('444');
    expect(t.get('/r/sub')?.mode).toBe('555');
  });

  it('WORKDIR below dirs made by COPY --chown keeps their owner; an existing WORKDIR makes an empty layer', async () => {
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nCOPY --chown=app a.txt /home/app/a.txt\nWORKDIR /home/app/w\nWORKDIR /home/app\n', 'a.txt': 'A' });
    fx.cleanup.push(ctx);
    const { result } = await runBuild(fx.store, { contextDir: ctx });
    const dir = await tempDir('flat');
    fx.cleanup.push(dir);
    await flattenImage(fx.store, result.manifestDigest, dir);
    const t = await describeTree(dir);
    expect(t.get('/home')?.owner).toBe('1000:1000');
    expect(t.get('/home/app')?.owner).toBe('1000:1000');
    expect(t.get('/home/app/w')).toMatchObject({ owner: '0:0', mode: '755' });
    // The empty tar: the dir already existed, nothing changed (BuildKit's 32-byte gzip layer).
    expect(result.config.rootfs.diff_ids.at(-1)).toBe('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
  });

  it('refuses an invalid --chmod with BuildKit\'s message', async () => {
    expect((await buildError('FROM busybox:local\nCOPY --chmod=99999 a.txt /x\n', FILES)).message).toBe(
      'invalid chmod parameter: \'99999\'. it should be octal string and between 0 and 07777',
    );
  });
});

describe('COPY --exclude and --parents', () => {
  it('--exclude (dockerignore syntax) filters top-level matches and entries below a copied dir', async () => {
    const t = await buildTree('FROM busybox:local\nCOPY --exclude=**/*.md --exclude=dir/sub . /e/\nCOPY --exclude=b.txt *.txt /e2/\n', FILES);
    expect([...t.keys()].filter((p) => p.startsWith('/e/') || p.startsWith('/e2/'))).toEqual([
      '/e/Dockerfile', '/e/a.txt', '/e/b.txt', '/e/dir', '/e/dir/x', '/e2/a.txt',
    ]);
  });

  it('--parents keeps the source path, below a /./ pivot when there is one', async () => {
    const t = await buildTree('FROM busybox:local\nCOPY --parents dir/sub/y dir/x /p/\nCOPY --parents ./dir/./sub /q/\nCOPY --parents */x /r/\n', FILES);
    expect([...t.keys()].filter((p) => /^\/[pqr]\//.test(p))).toEqual([
      '/p/dir', '/p/dir/sub', '/p/dir/sub/y', '/p/dir/x', '/q/sub', '/q/sub/y', '/r/dir', '/r/dir/x',
    ]);
  });
});

describe('COPY links and special files', () => {
  it('symlinks are copied as symlinks; a top-level symlink is followed only inside the context', async () => {
    const prepare = async (ctx: string): Promise<void> => {
      await symlink('../../../../etc', join(ctx, 'dir', 'up'));
      await symlink('dir/x', join(ctx, 'tox'));
      await symlink('/etc/hostname', join(ctx, 'escape'));
    };
    const t = await buildTree('FROM busybox:local\nCOPY dir /l/\nCOPY tox /t\n', FILES, prepare);
    expect(t.get('/l/up')).toMatchObject({ type: 'symlink', data: '../../../../etc' });
    expect(t.get('/t')).toMatchObject({ type: 'file' });
    // An absolute link resolves inside the context root: /etc/hostname is not in the context.
    const err = await buildError('FROM busybox:local\nCOPY escape /e\n', FILES, prepare);
    expect(err.message).toContain('"/escape": not found');
  });

  it('hard links within one copy stay hard links; fifos and setuid survive COPY --from', async () => {
    const t = await buildTree(
      'FROM busybox:local AS src\nRUN mkdir /s && echo hi > /s/one && ln /s/one /s/two && mkfifo /s/pipe && cp /bin/busybox /s/suid && chmod 4755 /s/suid && chown 7:8 /s/one\nFROM busybox:local\nCOPY --from=src /s /dst/\n',
    );
    expect(t.get('/dst/two')?.linkGroup).toBe('/dst/one');
    expect(t.get('/dst/one')?.owner).toBe('7:8');
    expect(t.get('/dst/pipe')?.type).toBe('fifo');
    expect(t.get('/dst/suid')?.mode).toBe('4755');
  });

  it('COPY --from sources take wildcards; one matching nothing is a no-op', async () => {
    const t = await buildTree('FROM busybox:local AS src\nRUN mkdir -p /out/sub && echo 1 > /out/a.js && echo 2 > /out/b.js && echo 3 > /out/c.css\nFROM busybox:local\nCOPY --from=src /out/*.js /out/su? /app/\nCOPY --from=src /out/*.none /none/\n');
    expect([...t.keys()].filter((p) => p.startsWith('/app/') || p.startsWith('/none'))).toEqual(['/app/a.js', '/app/b.js']);
    const err = await buildError('FROM busybox:local AS src\nFROM busybox:local\nCOPY --from=src /nope /x\n');
    expect(err.message).toBe('"/nope": not found in the source stage');
  });

  it('extended attributes are copied, from the context and between stages', async () => {
    const ctx = await makeContext({ Dockerfile: 'FROM busybox:local AS one\nCOPY x.bin /x.bin\nFROM busybox:local\nCOPY --from=one /x.bin /copied\nCOPY x.bin /direct\n', 'x.bin': 'x' });
    fx.cleanup.push(ctx);
    setXattr(join(ctx, 'x.bin'), 'user.tsbuild.test', 'kept');
    const { result } = await runBuild(fx.store, { contextDir: ctx });
    const dir = await tempDir('flat');
    fx.cleanup.push(dir);
    await flattenImage(fx.store, result.manifestDigest, dir);
    expect(getXattr(join(dir, 'copied'), 'user.tsbuild.test')?.toString()).toBe('kept');
    expect(getXattr(join(dir, 'direct'), 'user.tsbuild.test')?.toString()).toBe('kept');
  });

  it('hard links in the context are preserved', async () => {
    const t = await buildTree('FROM busybox:local\nCOPY h /h/\n', {}, async (ctx) => {
      await mkdir(join(ctx, 'h'));
      await (await import('node:fs/promises')).writeFile(join(ctx, 'h', 'a'), 'same');
      await link(join(ctx, 'h', 'a'), join(ctx, 'h', 'b'));
    });
    expect(t.get('/h/b')?.linkGroup).toBe('/h/a');
  });
});
