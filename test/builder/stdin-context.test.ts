/** `tsbuild build -` as `docker build -`: a context tar, or a Dockerfile alone, on stdin. */
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { makeTar } from '../layers/fixtures.js';
import { runMain } from '../cli/helpers.js';
import { imageOf, readInImage, tempDir, useBusyboxStore } from './helpers.js';

const fx = useBusyboxStore();

async function buildStdin(stdin: Buffer | string, args: string[] = []): Promise<{ code: number; log: string; manifest: string }> {
  const dir = await tempDir('stdin-meta');
  fx.cleanup.push(dir);
  const meta = join(dir, 'meta.json');
  const r = await runMain(['--root', fx.root, 'build', '--progress', 'plain', '--metadata-file', meta, ...args, '-'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    stdin: Readable.from([Buffer.from(stdin)]),
  });
  const manifest = r.code === 0 ? (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'] ?? '' : '';
  return { code: r.code, log: r.stderr, manifest };
}

/** Nothing of a stdin context stays in the store's tmp dir. */
function stdinLeftovers(): string[] {
  return readdirSync(join(fx.root, 'tmp'), { recursive: true }).map(String).filter((n) => n.includes('stdin-'));
}

describe('build - (stdin)', () => {
  it('a Dockerfile alone builds with an empty context', async () => {
    const r = await buildStdin('FROM busybox:local\nRUN echo from-stdin-dockerfile\n');
    expect(r.code, r.log).toBe(0);
    expect(r.log).toContain('from-stdin-dockerfile');
    expect(stdinLeftovers()).toEqual([]);
  });

  it('a gzip context tar: COPY reads its files, -f names a Dockerfile inside it', async () => {
    const tar = makeTar([
      { name: 'Dockerfile', data: 'FROM busybox:local\nCOPY app.txt /app.txt\n' },
      { name: 'app.txt', data: 'hello from the tar\n' },
      { name: 'ci/Dockerfile.ci', data: 'FROM busybox:local\nCOPY app.txt /ci.txt\n' },
    ]);
    const plain = await buildStdin(gzipSync(tar));
    expect(plain.code, plain.log).toBe(0);
    expect(await readInImage((await imageOf(fx.store, plain.manifest)).view, '/app.txt')).toBe('hello from the tar\n');
    const ci = await buildStdin(gzipSync(tar), ['-f', 'ci/Dockerfile.ci']);
    expect(ci.code, ci.log).toBe(0);
    expect(await readInImage((await imageOf(fx.store, ci.manifest)).view, '/ci.txt')).toBe('hello from the tar\n');
    expect(stdinLeftovers()).toEqual([]);
  });

  it('a plain tar: its .dockerignore is honoured, and `..` names stay inside', async () => {
    const tar = makeTar([
      { name: 'Dockerfile', data: 'FROM busybox:local\nCOPY . /ctx/\nRUN ls -a /ctx | tr "\\n" " "\n' },
      { name: '.dockerignore', data: 'secret.txt\n' },
      { name: 'secret.txt', data: 'no' },
      { name: 'keep.txt', data: 'yes' },
      { name: '../../escape.txt', data: 'clamped' },
    ]);
    const r = await buildStdin(tar);
    expect(r.code, r.log).toBe(0);
    expect(r.log).toMatch(/\. \.\. \.dockerignore Dockerfile escape\.txt keep\.txt/);
    expect(r.log).not.toContain('secret.txt');
    expect(stdinLeftovers()).toEqual([]);
  });

  it('a Dockerfile in the tar that links to a host file is read inside the context, never from the host', async () => {
    const secretDir = await tempDir('df-secret');
    fx.cleanup.push(secretDir);
    await writeFile(join(secretDir, 'secret'), 'root:$6$hunter2-hash:19000\n');
    const r = await buildStdin(makeTar([{ name: 'Dockerfile', type: 'symlink', linkname: join(secretDir, 'secret') }]));
    expect(r.code).not.toBe(0);
    expect(r.log).toContain('cannot read Dockerfile');
    expect(r.log).not.toContain('hunter2');
    expect(stdinLeftovers()).toEqual([]);
  });

  it('refuses -f - together with a stdin context', async () => {
    const r = await buildStdin('FROM busybox:local\n', ['-f', '-']);
    expect(r.code).toBe(2);
    expect(r.log).toContain('cannot both be read from stdin');
  });
});
