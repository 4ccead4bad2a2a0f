/**
 * Untrusted inputs other than layers (second red-team round): what a Dockerfile, a flag or a
 * misbehaving server can make tsbuild print, read or leave behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, StaticAuth, pullImage } from '../../src/registry/index.js';
import { runMain } from '../cli/helpers.js';
import { makeTar } from '../layers/fixtures.js';
import { tempDir, useBusyboxStore } from '../builder/helpers.js';

const fx = useBusyboxStore();

async function build(dockerfile: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; log: string; ctx: string }> {
  const ctx = await fx.ctx({ Dockerfile: dockerfile });
  const r = await runMain(['--root', fx.root, 'build', '--progress', 'plain', ...args, ctx], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdin: Readable.from(['']) });
  return { code: r.code, log: r.stderr, ctx };
}

describe('untrusted build inputs', () => {
  it('never prints a password from an ADD URL or a secret value from a refused spec', async () => {
    const url = await build('FROM busybox:local\nADD http://alice:hunter2pw@127.0.0.1:9/x /x\n');
    expect(url.code).not.toBe(0);
    expect(url.log).toContain('credentials in URLs are not supported');
    // The instruction itself is echoed as written (the step header, the excerpt), as BuildKit does;
    // the error message names the URL without its credentials.
    const messages = url.log.split('\n').filter((l) => /ERROR|^error/.test(l));
    expect(messages.length).toBeGreaterThan(0);
    expect(messages.join('\n')).not.toContain('hunter2pw');
    const secretDir = await tempDir('nul-secret');
    fx.cleanup.push(secretDir);
    await writeFile(join(secretDir, 's'), Buffer.from('TOPSECRET\0tail'));
    const nul = await build('FROM busybox:local\nRUN --mount=type=secret,id=s,env=TOKEN true\n', ['--no-cache', '--secret', `id=s,src=${join(secretDir, 's')}`]);
    expect(nul.code).not.toBe(0);
    expect(nul.log).toContain('NUL byte: the value of TOKEN');
    expect(nul.log).not.toContain('TOPSECRET');
  });

  it('ids and names like __proto__ or constructor are ordinary keys', async () => {
    const proto = await build('FROM busybox:local\nRUN --mount=type=secret,id=__proto__ echo "[$(cat /run/secrets/__proto__ 2>/dev/null || echo none)]"\n', ['--no-cache']);
    expect(proto.code, proto.log).toBe(0);
    expect(proto.log).toContain('[none]');
    const arg = await build('FROM busybox:local\nARG constructor\nARG toString=ok\nRUN echo "[$constructor][$toString]"\n', ['--no-cache']);
    expect(arg.code, arg.log).toBe(0);
    expect(arg.log).toContain('[][ok]');
  });

  it('a bad -o fails before the build, leaving no image or tag; an output that cannot be opened is a clear error', async () => {
    const bad = await build('FROM busybox:local\nRUN echo never-built\n', ['-t', 'rt/bad-output:1', '-o', 'type=bogus,dest=/tmp/x']);
    expect(bad.code).toBe(2);
    expect(bad.log).not.toContain('never-built');
    const images = await runMain(['--root', fx.root, 'images'], { env: {}, stdin: Readable.from(['']) });
    expect(images.stdout.toString()).not.toContain('rt/bad-output');
    const noDir = await build('FROM busybox:local\n', ['-o', 'type=tar,dest=/nonexistent-dir/out.tar']);
    expect(noDir.code).not.toBe(0);
    expect(noDir.log).toContain('cannot write the output /nonexistent-dir/out.tar');
  });

  it('a context tar on stdin (or ADD of an archive) expanding past 1:200 is refused, nothing left', async () => {
    const bomb = gzipSync(makeTar([{ name: 'Dockerfile', data: 'FROM busybox:local\n' }, { name: 'zeros', data: Buffer.alloc(96 << 20) }]));
    const r = await runMain(['--root', fx.root, 'build', '-'], { env: {}, stdin: Readable.from([bomb]) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('expands more than 200:1');
    expect(readdirSync(join(fx.root, 'tmp'), { recursive: true }).map(String).filter((n) => n.includes('stdin-'))).toEqual([]);
  });

  it('glob patterns that would backtrack for hours (.dockerignore, COPY wildcards) still answer', async () => {
    // `*a` x 13 then `*b` against 70 a's: hours for a backtracking regexp, and the blocked event
    // loop ignored SIGTERM; the build now completes (the vitest timeout is the bound).
    const evil = `${'*a'.repeat(13)}*b`;
    const name = 'a'.repeat(70);
    const ctx = await fx.ctx({ Dockerfile: `FROM busybox:local\nCOPY ${evil}* /w/\nCOPY . /all/\nRUN ls /all | grep -c aaaa\n`, '.dockerignore': `${evil}\n`, [name]: 'x' });
    const r = await runMain(['--root', fx.root, 'build', '--progress', 'plain', '--no-cache', ctx], { env: {}, stdin: Readable.from(['']) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/#\d+ [0-9.]+ 1\n/);
  });

  it('a Dockerfile that is a FIFO is refused instead of hanging', async () => {
    const dir = await tempDir('fifo-df');
    fx.cleanup.push(dir);
    mkdirSync(join(dir, 'ctx'));
    execFileSync('mkfifo', [join(dir, 'ctx', 'Dockerfile')]);
    const r = await runMain(['--root', fx.root, 'build', join(dir, 'ctx')], { env: {}, stdin: Readable.from(['']) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('is not a regular file');
  });
});

describe('a registry answering with an endless error body', () => {
  let server: Server;
  let host: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(404, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1 << 20, 0x61);
      const pump = (): void => {
        while (res.write(chunk)) if (res.writableLength > 64 << 20) break;
      };
      res.on('drain', pump);
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('reads only the start of it and fails with the status', async () => {
    const client = new RegistryClient({ auth: new StaticAuth({}), registriesConf: false, retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    const dir = await tempDir('endless');
    fx.cleanup.push(dir);
    const before = process.memoryUsage().rss;
    const err = await pullImage(client, parseReference(`${host}/x/y:1`), fx.store.blobs).catch((e: unknown) => e);
    await client.close();
    expect(String(err)).toMatch(/404|not found/i);
    // Without a bound the whole endless body was buffered (gigabytes); 64 KiB are read now.
    expect(process.memoryUsage().rss - before).toBeLessThan(256 << 20);
  });
});
