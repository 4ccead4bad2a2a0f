/**
 * ADD: local archives unpacked by content (tar, gzip, bzip2, xz, zstd) through the hostile-safe
 * extractor, and http(s) URLs from a local server (name, mode 0600, Last-Modified mtime,
 * --checksum, bounded redirects, no credentials, cache key from the content).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeTree, flattenImage, type TreeNode } from '../differential/helpers.js';
import { makeTar } from '../layers/fixtures.js';
import { urlFileName } from '../../src/builder/add-url.js';
import { useBusyboxStore, makeContext, runBuild, tempDir } from './helpers.js';

const fx = useBusyboxStore();

async function build(dockerfile: string, prepare?: (ctx: string) => Promise<void>, tags?: string[]): Promise<{ tree: Map<string, TreeNode>; root: string; events: { type: string }[] }> {
  const ctx = await makeContext({ Dockerfile: dockerfile });
  fx.cleanup.push(ctx);
  await prepare?.(ctx);
  const { result, events } = await runBuild(fx.store, { contextDir: ctx, ...(tags !== undefined ? { tags } : {}) });
  const root = await tempDir('flat');
  fx.cleanup.push(root);
  await flattenImage(fx.store, result.manifestDigest, root);
  return { tree: await describeTree(root), root, events };
}

async function buildError(dockerfile: string, prepare?: (ctx: string) => Promise<void>, tags?: string[]): Promise<Error> {
  return build(dockerfile, prepare, tags).then(() => new Error('build succeeded'), (err: unknown) => err as Error);
}

/** A tar of p/{hello.txt, sub/deep.txt} owned 123:456, in every compression, misleadingly named. */
async function archives(ctx: string): Promise<void> {
  const payload = join(ctx, '..', `${ctx.split('/').pop() ?? ''}-payload`);
  fx.cleanup.push(payload);
  await mkdir(join(payload, 'sub'), { recursive: true });
  await writeFile(join(payload, 'hello.txt'), 'hello\n');
  await writeFile(join(payload, 'sub', 'deep.txt'), 'deep\n');
  execFileSync('tar', ['--numeric-owner', '--owner=123', '--group=456', '-C', payload, '-cf', join(ctx, 't.tar'), '.']);
  const compress = (cmd: string, out: string): void => {
    execFileSync('sh', ['-c', `${cmd} < "${join(ctx, 't.tar')}" > "${join(ctx, out)}"`]);
  };
  compress('gzip -c', 'g.data');
  compress('bzip2 -c', 'b.bin');
  compress('xz -c', 'x.tgz');
  compress('zstd -q -c', 'z.zip');
  execFileSync('sh', ['-c', `echo not a tar | gzip -c > "${join(ctx, 'notatar.tar.gz')}"`]);
}

describe('ADD of local archives', () => {
  it('unpacks tar, gzip, bzip2, xz and zstd by content into a directory, keeping tar owners', async () => {
    const { tree } = await build(
      'FROM busybox:local\nADD t.tar /plain\nADD g.data /gz/\nADD b.bin /bz\nADD x.tgz /xz\nADD z.zip /zs\nADD notatar.tar.gz /nt/\n',
      archives,
    );
    for (const d of ['/plain', '/gz', '/bz', '/xz', '/zs']) {
      expect(tree.get(`${d}/hello.txt`)).toMatchObject({ type: 'file', owner: '123:456' });
      expect(tree.get(`${d}/sub/deep.txt`)?.type).toBe('file');
    }
    expect(tree.get('/nt/notatar.tar.gz')?.type).toBe('file'); // gzip of text: copied as is
  });

  it('--chown overrides tar owners; --unpack=false copies the archive file', async () => {
    const { tree } = await build('FROM busybox:local\nADD --chown=app t.tar /owned/\nADD --unpack=false g.data /keep/\n', archives);
    expect(tree.get('/owned/hello.txt')?.owner).toBe('1000:1000');
    expect(tree.get('/owned/sub')?.owner).toBe('1000:1000');
    expect(tree.get('/keep/g.data')?.type).toBe('file');
  });

  it('node-tar CVE-2021-32804 / CVE-2019-14271-class: absolute and `..` entries stay inside the destination', async () => {
    const outside = await tempDir('outside');
    fx.cleanup.push(outside);
    const { tree } = await build('FROM busybox:local\nADD evil.tar /h/\n', async (ctx) => {
      await writeFile(join(ctx, 'evil.tar'), makeTar([
        { name: `${outside}/abs.txt`, data: 'abs' },
        { name: '../../../dotdot.txt', data: 'dotdot' },
        { name: '/etc/passwd', data: 'owned' },
      ]));
    });
    expect(existsSync(join(outside, 'abs.txt'))).toBe(false);
    expect(tree.get(`/h${outside}/abs.txt`)?.type).toBe('file');
    expect(tree.get('/h/dotdot.txt')?.type).toBe('file');
    expect(tree.get('/h/etc/passwd')?.type).toBe('file');
    expect(tree.get('/etc/passwd')?.data).not.toBe(createHash('sha256').update('owned').digest('hex').slice(0, 16));
  });

  it('symlink-escape class (node-tar CVE-2021-37701): writes through a planted symlink stay inside', async () => {
    const outside = await tempDir('outside');
    fx.cleanup.push(outside);
    const { tree } = await build('FROM busybox:local\nADD evil.tar /s/\n', async (ctx) => {
      await writeFile(join(ctx, 'evil.tar'), makeTar([
        { name: 'root', type: 'symlink', linkname: '/' },
        { name: 'root/etc/evil', data: 'x' },
        { name: 'out', type: 'symlink', linkname: outside },
        { name: 'out/planted', data: 'x' },
      ]));
    });
    expect(existsSync(join(outside, 'planted'))).toBe(false);
    expect(tree.has('/etc/evil')).toBe(false);
    expect(tree.get('/s/root')).toMatchObject({ type: 'symlink', data: '/' });
    expect(tree.get('/s/etc/evil')?.type).toBe('file');
  });
});

describe('ADD of hostile archives that cannot be contained', () => {
  it('tar-fs CVE-2024-12905-class: a hard link to a path outside the archive fails, naming the source', async () => {
    const err = await buildError('FROM busybox:local\nADD evil.tar /h/\n', async (ctx) => {
      await writeFile(join(ctx, 'evil.tar'), makeTar([{ name: 'pw', type: 'link', linkname: '../../../etc/passwd' }]));
    });
    expect(err.message).toContain('cannot unpack evil.tar (tar archive)');
    expect(err.message).toContain('target missing');
    expect(await readdir(fx.store.tmpDir)).toEqual([]); // staging and unpack dirs removed
  });
});

describe('ADD of URLs', () => {
  let server: Server;
  let base = '';
  let version = 'v1';
  const seen: IncomingHttpHeaders[] = [];
  const DATA = 'remote data\n';
  const TAR = makeTar([{ name: 'in-tar.txt', data: 'unpacked' }]);
  /** /stall responses whose connection is still open. */
  const stalled = new Set<ServerResponse>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push(req.headers);
      const url = req.url ?? '/';
      const hop = /^\/r\/(\d+)$/.exec(url);
      if (hop !== null) {
        const n = Number(hop[1]);
        res.writeHead(302, { location: n === 0 ? '/files/data.bin' : `/r/${n - 1}` }).end();
      } else if (url === '/files/data.bin') {
        res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end(DATA);
      } else if (url === '/arch.tar') res.writeHead(200).end(TAR);
      else if (url === '/version') res.writeHead(200).end(version);
      else if (url === '/files%2Fdata.bin' || url === '/' || url === '/x%2F..') res.writeHead(200).end(DATA);
      else if (url === '/stall') {
        // Headers, 1 MiB of body (past what the store gathers in memory: a temp file is open),
        // then nothing more, ever.
        res.writeHead(200, { 'content-length': String(8 << 20) });
        res.write(Buffer.alloc(1 << 20, 1));
        stalled.add(res);
        res.on('close', () => stalled.delete(res));
      } else if (url === '/silent') {
        // The request is read and never answered: not even headers.
        stalled.add(res);
        res.on('close', () => stalled.delete(res));
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('names the file after the URL path, mode 0600, root, mtime from Last-Modified; redirects followed', async () => {
    const { tree, root } = await build(`FROM busybox:local\nADD ${base}/files/data.bin /u/\nADD ${base}/files/data.bin /named\nADD ${base}/r/9 /redir/\nADD ${base}/arch.tar /nu/\nADD --unpack=true ${base}/arch.tar /ua/\n`);
    const digest = createHash('sha256').update(DATA).digest('hex').slice(0, 16);
    expect(tree.get('/u/data.bin')).toMatchObject({ type: 'file', mode: '600', owner: '0:0', data: digest });
    expect(tree.get('/named')).toMatchObject({ type: 'file', mode: '600', data: digest });
    expect(tree.get('/redir/9')?.data).toBe(digest);
    expect((await lstat(join(root, 'u/data.bin'))).mtimeMs).toBe(Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'));
    expect(tree.get('/nu/arch.tar')?.type).toBe('file'); // URLs are not unpacked by default
    expect(tree.get('/ua/in-tar.txt')?.type).toBe('file');
    expect(seen.every((h) => h.authorization === undefined && h.cookie === undefined)).toBe(true);
  });

  it('--checksum: a match builds, a mismatch fails clearly and tags nothing', async () => {
    const good = `sha256:${createHash('sha256').update(DATA).digest('hex')}`;
    const { tree } = await build(`FROM busybox:local\nADD --checksum=${good} ${base}/files/data.bin /c\n`);
    expect(tree.get('/c')?.type).toBe('file');
    const bad = `sha256:${'0'.repeat(64)}`;
    const err = await buildError(`FROM busybox:local\nADD --checksum=${bad} ${base}/files/data.bin /c\n`, undefined, ['docker.io/library/bad:1']);
    expect(err.message).toBe(`ADD ${base}/files/data.bin: checksum mismatch: expected ${bad}, got ${good}`);
    expect(await fx.store.tags.get('docker.io/library/bad:1')).toBeUndefined();
  });

  it('refuses more than 10 redirects, credentials, git sources and a --checksum on a local source', async () => {
    expect((await buildError(`FROM busybox:local\nADD ${base}/r/10 /x\n`)).message).toContain('more than 10 redirects');
    expect((await buildError(`FROM busybox:local\nADD ${base.replace('//', '//u:p@')}/files/data.bin /x\n`)).message).toContain('credentials in URLs are not supported');
    expect((await buildError('FROM busybox:local\nADD https://github.com/moby/buildkit.git#v0.12.0 /src\n')).message).toContain('git sources are not supported');
    expect((await buildError(`FROM busybox:local\nADD --checksum=sha256:${'0'.repeat(64)} Dockerfile /x\n`)).message).toBe('--checksum can only be used with a single HTTP(S) source');
    expect((await buildError(`FROM busybox:local\nADD ${base}/missing /x\n`)).message).toContain('answered 404');
  });

  it('the cache key follows the downloaded content', async () => {
    version = 'v1';
    const df = `FROM busybox:local\nADD ${base}/version /v\n`;
    await build(df);
    const again = await build(df);
    expect(again.events.filter((e) => e.type === 'step-cached')).toHaveLength(1);
    version = 'v2';
    const changed = await build(df);
    expect(changed.events.filter((e) => e.type === 'step-cached')).toHaveLength(0);
    expect(changed.tree.get('/v')?.data).toBe(createHash('sha256').update('v2').digest('hex').slice(0, 16));
  });

  it('a body that stalls (or headers that never come) fails after TSBUILD_URL_IDLE_TIMEOUT, naming the URL, and leaves no blob or temp file', async () => {
    const blobs = (): Promise<string[]> => readdir(join(fx.root, 'blobs', 'sha256'));
    const before = await blobs();
    const saved = process.env.TSBUILD_URL_IDLE_TIMEOUT;
    process.env.TSBUILD_URL_IDLE_TIMEOUT = '0.5';
    try {
      // Both download paths: while the cache key is computed, and (--checksum) in the step itself.
      for (const ins of [`ADD ${base}/stall /s`, `ADD --checksum=sha256:${'1'.repeat(64)} ${base}/stall /s`]) {
        const t0 = Date.now();
        const err = await buildError(`FROM busybox:local\n${ins}\n`, undefined, ['docker.io/library/stalled:1']);
        expect(err).toMatchObject({ code: 'CONTEXT', line: 2 });
        expect(err.message).toBe(`ADD ${base}/stall: reading ${base}/stall failed: response stalled (no data for 0.5s)`);
        expect((err as { hint?: string }).hint).toContain('TSBUILD_URL_IDLE_TIMEOUT');
        expect(Date.now() - t0).toBeLessThan(10_000);
      }
      // A server that never sends headers is bounded the same way (it waited undici's 300 s).
      const silent = await buildError(`FROM busybox:local\nADD ${base}/silent /s\n`);
      expect(silent).toMatchObject({ code: 'CONTEXT', line: 2, message: `ADD ${base}/silent: request to ${base}/silent failed: no response within 0.5s` });
      expect((silent as { hint?: string }).hint).toContain('TSBUILD_URL_IDLE_TIMEOUT');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(stalled.size).toBe(0); // the connections were dropped, not left open
      expect(await readdir(fx.store.tmpDir)).toEqual([]);
      expect(await blobs()).toEqual(before);
      expect(await fx.store.tags.get('docker.io/library/stalled:1')).toBeUndefined();
      process.env.TSBUILD_URL_IDLE_TIMEOUT = 'soon';
      expect(await buildError(`FROM busybox:local\nADD ${base}/stall /s\n`)).toMatchObject({ code: 'USAGE', message: expect.stringContaining('TSBUILD_URL_IDLE_TIMEOUT="soon"') as unknown });
    } finally {
      if (saved === undefined) delete process.env.TSBUILD_URL_IDLE_TIMEOUT;
      else process.env.TSBUILD_URL_IDLE_TIMEOUT = saved;
    }
  }, 30_000);

  it('a URL path whose last segment is no usable file name: a clear error when the file goes into a directory', async () => {
    const before = seen.length;
    const cases: [string, string][] = [['/x/..%2F', 'names the parent directory'], ['/x%2F..', 'names the parent directory'], ['/a%00b', 'holds a NUL byte'], [`/${'n'.repeat(256)}`, 'longer than 255 bytes']];
    for (const [path, why] of cases) {
      // A trailing slash, and a destination the base image has as a directory (/bin).
      for (const dest of ['/dir/', '/bin']) {
        const err = await buildError(`FROM busybox:local\nADD ${base}${path} ${dest}\n`);
        expect(err, `${path} ${dest}`).toMatchObject({ code: 'DOCKERFILE', line: 2, hint: expect.stringContaining(`${dest.replace(/\/$/, '')}/NAME`) as unknown });
        expect(err.message, path).toMatch(/the file name .* \(the last segment of the URL path\) is not usable/);
        expect(err.message, path).toContain(`ADD ${base}${path}: `);
        expect(err.message, path).toContain(why);
      }
    }
    expect(seen.length).toBe(before); // refused before any request
    expect(await readdir(fx.store.tmpDir)).toEqual([]);
    // The name is not used when the destination names the file: those build as before.
    const named = await build(`FROM busybox:local\nADD ${base}/x%2F.. /named\nADD ${base}/files%2Fdata.bin /d/\nADD ${base}/ /u/\n`);
    expect(named.tree.get('/named')?.type).toBe('file');
    expect(named.tree.get('/d/data.bin')?.type).toBe('file');
    expect(named.tree.get('/u/__unnamed__')?.type).toBe('file');
    // BuildKit's names otherwise: path.Base of the decoded path, __unnamed__ for no segment.
    expect(urlFileName(new URL('http://h'))).toBe('__unnamed__');
    expect(urlFileName(new URL('http://h/a/..'))).toBe('__unnamed__'); // the URL parser already resolved it
    expect(urlFileName(new URL('http://h/x%2F.'))).toBe('__unnamed__');
    expect(urlFileName(new URL('http://h/%2F'))).toBe('__unnamed__');
    expect(urlFileName(new URL('http://h/dir%2F'))).toBe('dir');
    expect(urlFileName(new URL('http://h/a%20b.txt?x=1#f'))).toBe('a b.txt');
    expect(urlFileName(new URL('http://h/bad%ZZ'))).toBe('bad%ZZ'); // not decodable: taken as written
  });
});
