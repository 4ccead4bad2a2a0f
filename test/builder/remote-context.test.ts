/** `tsbuild build URL`: a Git repository (a real `git daemon`) or an http(s) URL as the context. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGitContext } from '../../src/builder/remote-context.js';
import { sha256Digest } from '../../src/image/digest.js';
import { makeTar } from '../layers/fixtures.js';
import { runMain } from '../cli/helpers.js';
import { imageOf, readInImage, tempDir, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function build(context: string, args: string[] = []): Promise<{ code: number; log: string; manifest: string }> {
  const dir = await tempDir('remote-meta');
  fx.cleanup.push(dir);
  const meta = join(dir, 'meta.json');
  const r = await runMain(['--root', fx.root, 'build', '--progress', 'plain', '--metadata-file', meta, ...args, context], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdin: Readable.from(['']),
  });
  const manifest = r.code === 0 ? ((JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'] ?? '') : '';
  return { code: r.code, log: r.stderr, manifest };
}

const leftovers = (): string[] => readdirSync(join(fx.root, 'tmp'), { recursive: true }).map(String).filter((n) => /(^|\/)(git|stdin)-/.test(n));

describe('parseGitContext', () => {
  it('splits URL#REF:SUBDIR, cleaning the subdir', () => {
    expect(parseGitContext('https://h/r.git#v1:app/web')).toEqual({ url: 'https://h/r.git', ref: 'v1', subdir: ['app', 'web'] });
    expect(parseGitContext('git@h:o/r.git#:../../sub')).toEqual({ url: 'git@h:o/r.git', subdir: ['sub'] });
    expect(parseGitContext('git://h/r.git')).toEqual({ url: 'git://h/r.git', subdir: [] });
  });
});

describe('git contexts', () => {
  let daemon: ChildProcess;
  let base: string;
  let url: string;
  let first = '';

  beforeAll(async () => {
    base = await tempDir('git-ctx');
    const work = join(base, 'work');
    mkdirSync(join(work, 'app'), { recursive: true });
    const g = (...a: string[]): string => execFileSync('git', ['-C', work, ...a], { env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).toString().trim();
    execFileSync('git', ['init', '--quiet', '-b', 'main', work]);
    writeFileSync(join(work, 'Dockerfile'), 'FROM busybox:local\nCOPY . /ctx/\nRUN ls -a /ctx | tr "\\n" " "\n');
    writeFileSync(join(work, 'hello.txt'), 'one\n');
    writeFileSync(join(work, 'app/Dockerfile'), 'FROM busybox:local\nCOPY app.txt /app.txt\n');
    writeFileSync(join(work, 'app/app.txt'), 'the app\n');
    g('add', '-A');
    g('commit', '--quiet', '-m', 'one');
    first = g('rev-parse', 'HEAD');
    g('tag', 'v1');
    writeFileSync(join(work, 'hello.txt'), 'two\n');
    g('commit', '--quiet', '-am', 'two');
    execFileSync('git', ['clone', '--quiet', '--bare', work, join(base, 'repo.git')]);
    const port = await freePort();
    daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${base}`, '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore' });
    url = `git://127.0.0.1:${port}/repo.git`;
    for (let i = 0; i < 50; i++) {
      try {
        execFileSync('git', ['ls-remote', url], { stdio: 'ignore' });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  afterAll(() => {
    daemon?.kill();
  });

  it('builds the default branch, without the .git dir in the context', async () => {
    const r = await build(url);
    expect(r.code, r.log).toBe(0);
    expect(r.log).toMatch(/\. \.\. Dockerfile app hello\.txt/);
    expect(await readInImage((await imageOf(fx.store, r.manifest)).view, '/ctx/hello.txt')).toBe('two\n');
    expect(leftovers()).toEqual([]);
  });

  it('takes a tag, a commit id and a subdir from the fragment', async () => {
    const tag = await build(`${url}#v1`);
    expect(tag.code, tag.log).toBe(0);
    expect(await readInImage((await imageOf(fx.store, tag.manifest)).view, '/ctx/hello.txt')).toBe('one\n');
    const commit = await build(`${url}#${first}`);
    expect(commit.code, commit.log).toBe(0);
    expect(await readInImage((await imageOf(fx.store, commit.manifest)).view, '/ctx/hello.txt')).toBe('one\n');
    const sub = await build(`${url}#main:app`);
    expect(sub.code, sub.log).toBe(0);
    expect(await readInImage((await imageOf(fx.store, sub.manifest)).view, '/app.txt')).toBe('the app\n');
    expect(leftovers()).toEqual([]);
  });

  it('a token in the URL never reaches an error', async () => {
    for (const context of ['https://alice:s3cr3t-tok3n@127.0.0.1:9/repo.git#main', 'http://alice:s3cr3t-tok3n@127.0.0.1:9/ctx.tar']) {
      const r = await build(context);
      expect(r.code).not.toBe(0);
      expect(r.log).toContain('127.0.0.1:9');
      expect(r.log).not.toContain('s3cr3t-tok3n');
    }
    expect(leftovers()).toEqual([]);
  });

  it('a missing ref or subdir fails clearly and leaves nothing behind', async () => {
    const ref = await build(`${url}#no-such-branch`);
    expect(ref.code).not.toBe(0);
    expect(ref.log).toContain(`${url}#no-such-branch: git clone failed`);
    const sub = await build(`${url}#main:nowhere`);
    expect(sub.code).not.toBe(0);
    expect(sub.log).toContain('nowhere is not a directory in the repository');
    expect(leftovers()).toEqual([]);
  });
});

describe('http contexts', () => {
  let server: Server;
  let origin: string;
  const bodies: Record<string, Buffer> = {
    '/ctx.tar.gz': gzipSync(makeTar([{ name: 'Dockerfile', data: 'FROM busybox:local\nCOPY f.txt /f.txt\n' }, { name: 'f.txt', data: 'from the url\n' }])),
    '/Dockerfile': Buffer.from('FROM busybox:local\nRUN echo dockerfile-from-url\n'),
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const body = bodies[req.url ?? ''];
      if (body === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('a context tar or a Dockerfile alone; the download is not kept in the store', async () => {
    const tar = await build(`${origin}/ctx.tar.gz`);
    expect(tar.code, tar.log).toBe(0);
    expect(await readInImage((await imageOf(fx.store, tar.manifest)).view, '/f.txt')).toBe('from the url\n');
    const df = await build(`${origin}/Dockerfile`);
    expect(df.code, df.log).toBe(0);
    expect(df.log).toContain('dockerfile-from-url');
    for (const body of Object.values(bodies)) expect(await fx.store.blobs.has(sha256Digest(body))).toBe(false);
    const missing = await build(`${origin}/nope.tar`);
    expect(missing.code).not.toBe(0);
    expect(missing.log).toContain(`build context ${origin}/nope.tar: ${origin}/nope.tar answered 404`);
    expect(leftovers()).toEqual([]);
  });
});
