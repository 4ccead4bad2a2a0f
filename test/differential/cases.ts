/**
 * The Dockerfiles both builders build. `$BASE` is the busybox image in the local registry.
 * `allow` / `configAllow` list known buildah-vs-BuildKit differences, each with its reason.
 */
import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TreeNode } from './helpers.js';

export interface Case {
  name: string;
  dockerfile: string;
  files?: Record<string, string>;
  prepare?: (ctx: string) => Promise<void>;
  /** True when a node difference at `path` is an accepted buildah-vs-BuildKit difference. */
  allow?: (path: string, tsbuild: TreeNode | undefined, buildah: TreeNode | undefined) => boolean;
  configAllow?: Partial<Record<string, true>>;
}

/**
 * buildah (runc) leaves the mount points it bind-mounts for RUN in the layer: empty /dev, /proc,
 * /sys, /run dirs and empty /etc/hostname, /etc/hosts, /etc/resolv.conf files. BuildKit removes
 * such stubs after the exec ("mount stubs cleaner"), and so does tsbuild (DESIGN.md: stubs must not
 * leak into the layer). Allowed only where tsbuild has nothing and buildah has exactly the stub.
 */
const RUN_STUBS = new Set(['/dev', '/proc', '/sys', '/run', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf']);
function runStub(path: string, tsbuild: TreeNode | undefined, buildah: TreeNode | undefined): boolean {
  if (!RUN_STUBS.has(path) || tsbuild !== undefined || buildah === undefined) return false;
  return buildah.type === 'dir' || (buildah.type === 'file' && buildah.data === 'e3b0c44298fc1c14'); // sha256 of ""
}

const FILES = { 'a.txt': 'A\n', 'b.txt': 'B\n', 'c.md': 'C\n', 'dir/x': 'X\n', 'dir/sub/y': 'Y\n', 'dir/.hidden': 'H\n' };

export const CASES: Case[] = [
  {
    name: 'whiteouts: deleted base files, a removed-and-recreated dir (opaque), a removed symlink',
    allow: runStub,
    dockerfile: 'FROM $BASE\nRUN rm /etc/group && rm /bin/ls\nRUN rm -rf /root && mkdir /root && echo new > /root/fresh\nRUN mkdir -p /opt/a/b && echo 1 > /opt/a/b/f\nRUN rm -rf /opt/a && mkdir -p /opt/a && echo 2 > /opt/a/g\n',
  },
  {
    name: 'COPY variants: wildcards, dir contents, trailing slashes, --chown, --chmod',
    dockerfile: [
      'FROM $BASE',
      'COPY *.txt /w/',
      'COPY dir /d',
      'COPY dir/ /d2/',
      'COPY a.txt /f',
      'COPY a.txt /etc/',
      'COPY [ab].txt c.md /m/',
      'COPY --chown=app dir /owned/',
      'COPY --chown=1:2 a.txt /ids/a',
      'COPY --chown=app:nogroup a.txt /named/a',
      'COPY --chmod=640 a.txt /modes/a',
      'COPY --chmod=0755 dir /modes/d/',
      'WORKDIR /rel',
      'COPY a.txt .',
      'COPY b.txt sub/',
      '',
    ].join('\n'),
    files: FILES,
  },
  {
    name: 'multi-stage COPY --from: hard links, symlinks, setuid, fifo, ownership kept',
    allow: runStub,
    dockerfile: [
      'FROM $BASE AS src',
      'RUN mkdir -p /s/deep && echo hi > /s/one && ln /s/one /s/two && ln -s one /s/link && ln -s /etc/passwd /s/abs \\',
      ' && mkfifo /s/pipe && cp /bin/busybox /s/suid && chmod 4755 /s/suid && chmod 2750 /s/deep && chown -R 7:8 /s/deep && chown 9:9 /s/one',
      'FROM $BASE',
      'COPY --from=src /s /dst/',
      'COPY --from=src /s/one /single',
      'COPY --from=src /s/link /followed',
      '',
    ].join('\n'),
  },
  {
    name: 'USER and WORKDIR: created dirs, owners, relative WORKDIR, config',
    allow: runStub,
    dockerfile: 'FROM $BASE\nWORKDIR /srv/app\nUSER app\nWORKDIR data\nRUN touch mine && id -u > uid\nUSER 1000:1000\nWORKDIR /srv/app/other\n',
  },
  {
    name: 'variable expansion in COPY, WORKDIR, USER, ENV, LABEL, EXPOSE',
    dockerfile: [
      'FROM $BASE',
      'ARG DEST=/opt/dst',
      'ARG WHO=app',
      'ENV SRC=dir APP_HOME=/home/${WHO}',
      'COPY ${SRC} ${DEST}/',
      'COPY --chown=${WHO} a.txt ${APP_HOME}/a.txt',
      'WORKDIR ${APP_HOME}/w',
      'USER ${WHO}',
      'LABEL who=${WHO} dest=$DEST',
      'EXPOSE 8080 53/udp',
      'VOLUME /data',
      'STOPSIGNAL SIGTERM',
      'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
      'ENTRYPOINT ["/bin/sh", "-c"]',
      'CMD ["echo hi"]',
      '',
    ].join('\n'),
    files: FILES,
  },
  {
    name: 'ADD of local archives (tar, gzip, bzip2, xz) and plain files',
    dockerfile: 'FROM $BASE\nADD t.tar /plain/\nADD t.tar.gz /gz/\nADD t.tar.bz2 /bz/\nADD t.tar.xz /xz/\nADD a.txt /added\n',
    files: { 'a.txt': 'A\n' },
    // The tar's `./` entry carries 123:456. BuildKit unpacks with docker's archive.Untar, which
    // skips a `.` entry when the destination dir exists (it always does: MkdirAll first), so the
    // destination keeps 0755 root. buildah's copier applies the `./` metadata to it instead.
    allow: (path, ours, theirs) =>
      ['/plain', '/gz', '/bz', '/xz'].includes(path) && ours?.owner === '0:0' && theirs?.owner === '123:456' && ours.mode === theirs.mode,
    prepare: async (ctx) => {
      const payload = join(ctx, 'payload');
      await mkdir(join(payload, 'sub'), { recursive: true });
      await writeFile(join(payload, 'hello.txt'), 'hello\n');
      await writeFile(join(payload, 'sub', 'deep.txt'), 'deep\n');
      await chmod(join(payload, 'sub'), 0o750);
      await symlink('hello.txt', join(payload, 'hl'));
      await link(join(payload, 'hello.txt'), join(payload, 'hard'));
      execFileSync('tar', ['--numeric-owner', '--owner=123', '--group=456', '-C', payload, '-cf', join(ctx, 't.tar'), '.']);
      execFileSync('sh', ['-c', 'gzip -c t.tar > t.tar.gz && bzip2 -c t.tar > t.tar.bz2 && xz -c t.tar > t.tar.xz && rm -rf payload'], { cwd: ctx });
    },
  },
  {
    name: 'RUN-made hard links, setuid/setgid/sticky modes, fifo, deep symlinks, chown',
    // `echo 2 >> /x/a/f` in a later RUN: on overlayfs (BuildKit's default snapshotter, mounted
    // index=off, and tsbuild's sandbox) copy-up gives f a new inode, so its hard link /x/a/b/g
    // keeps the old content. buildah's vfs driver copies whole trees, so g changes with f.
    allow: (path, ours, theirs) =>
      runStub(path, ours, theirs) ||
      (path === '/x/a/f' && ours?.data === theirs?.data && ours?.linkGroup === undefined) ||
      (path === '/x/a/b/g' && ours?.data === '4355a46b19d348dc' /* sha256 of "1\n" */ && ours.linkGroup === undefined),
    dockerfile: [
      'FROM $BASE',
      'RUN mkdir -p /x/a/b && echo 1 > /x/a/f && ln /x/a/f /x/a/b/g && ln /x/a/f /x/h \\',
      ' && cp /bin/busybox /x/sg && chmod 2711 /x/sg && mkdir /x/tmp && chmod 1777 /x/tmp \\',
      ' && mkfifo -m 600 /x/fifo && ln -s ../../etc/passwd /x/a/b/rel && chown -h 5:6 /x/a/b/rel && chown 1000:1000 /x/a',
      'RUN echo 2 >> /x/a/f && rm /x/h',
      '',
    ].join('\n'),
  },
  {
    name: '.dockerignore with exceptions, COPY . with dotfiles and nested dirs',
    dockerfile: 'FROM $BASE\nCOPY . /ctx/\nCOPY dir/.hidden /hidden\n',
    files: { ...FILES, '.dockerignore': '*.md\n!keep.md\ndir/sub\n', 'keep.md': 'K\n', 'logs/x.log': 'L\n' },
  },
  {
    name: 'RUN --mount=type=bind from a stage (dir, file, rw) and from the context',
    // buildah leaves /mnt, the parent it created for the mount targets, as an empty dir in the
    // layer; BuildKit and tsbuild remove mount stubs. Allowed only as that exact stub.
    allow: (path, ours, theirs) => runStub(path, ours, theirs) || (path === '/mnt' && ours === undefined && theirs?.type === 'dir'),
    dockerfile: [
      'FROM $BASE AS build',
      'RUN mkdir -p /out/sub && echo one > /out/a && echo two > /out/sub/b && ln -s sub/b /out/link && chown 1000:1000 /out/sub',
      'RUN echo three > /out/c && rm /out/a',
      'FROM $BASE',
      'RUN --mount=type=bind,from=build,source=/out,target=/mnt/in cp -a /mnt/in/. /app/',
      'RUN --mount=type=bind,from=build,source=/out/link,target=/mnt/b cat /mnt/b > /b-copy',
      'RUN --mount=type=bind,from=build,source=/out,target=/mnt/rw,rw echo x > /mnt/rw/new && ls /mnt/rw > /rw-list',
      'RUN --mount=type=bind,source=dir,target=/mnt/ctx ls -a /mnt/ctx > /ctx-list && cat /mnt/ctx/x > /ctx-x',
      '',
    ].join('\n'),
    files: FILES,
  },
  {
    name: 'ADD of an http URL into a dir and to a file name',
    dockerfile: 'FROM $BASE\nADD $HTTP/files/remote.txt /dl/\nADD $HTTP/files/remote.txt /dl-named\n',
  },
];
