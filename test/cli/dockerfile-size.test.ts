/**
 * A Dockerfile over 16 MiB is refused with a Dockerfile error (exit 3) naming it and the limit,
 * before it is read whole, on every way in: `build -f`, `check`, `parse`, `-f -`, `build -` and an
 * http(s) URL context. A 100 MiB file used to exhaust V8's heap (exit 134).
 */
import { once } from 'node:events';
import { writeFile, truncate, readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/index.js';
import { cli, removeAll, runMain, tempDir } from './helpers.js';

const dirs: string[] = [];
let root: string;
let store: Store;
let ctx: string;
/** 17 MiB: a FROM line and one long comment, cheap to parse were it read. */
let big: string;
/** 100 MiB, sparse: reading it whole is what used to fill the heap. */
let huge: string;
const OVER = 17 << 20;
const bigText = `FROM scratch\n#${'x'.repeat(OVER)}\n`;

beforeAll(async () => {
  root = await tempDir('dfsize');
  ctx = await tempDir('dfsize-ctx');
  dirs.push(root, ctx);
  store = await openStore(root);
  big = join(ctx, 'big.Dockerfile');
  await writeFile(big, bigText);
  huge = join(ctx, 'Dockerfile');
  await writeFile(huge, 'FROM scratch\n');
  await truncate(huge, 100 << 20);
});
afterAll(() => removeAll(dirs));

/** What a refused stdin or URL context could leave in the store's tmp dir. */
const leftovers = async (): Promise<string[]> => (await readdir(join(root, 'tmp'), { recursive: true })).filter((n) => /(^|\/)stdin-/.test(n));

const LIMIT = 'is larger than the 16 MiB a Dockerfile may have';

describe('a Dockerfile over 16 MiB', () => {
  it('build -f FILE (and the default Dockerfile) is refused with exit 3 naming the file; nothing is tagged', async () => {
    for (const args of [['-f', big], []]) {
      const r = await cli(['--root', root, 'build', '--progress', 'quiet', '-t', 'big:1', ...args, ctx]);
      expect(r.code, r.stderr).toBe(3);
      const file = args.length === 0 ? huge : big;
      expect(r.stderr).toBe(`error: Dockerfile ${file} ${LIMIT}\nhint: is this the right file? (-f names the Dockerfile)\n`);
    }
    expect(await store.tags.get('docker.io/library/big:1')).toBeUndefined();
  });

  it('check and parse refuse it too, and read no further than the limit from a file that never ends', async () => {
    for (const cmd of [['check', '-f', big, ctx], ['parse', '-f', huge], ['check', '-f', '/dev/zero', ctx], ['parse', '-f', '/dev/zero']]) {
      const r = await cli(cmd);
      expect(r.code, `${cmd.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^error: Dockerfile \\S+ ${LIMIT}\n`));
    }
  });

  it('on stdin: -f - and build - are refused', async () => {
    const chunks = (): Readable => Readable.from([Buffer.from(bigText)]);
    const viaFile = await runMain(['--root', root, 'build', '-f', '-', ctx], { env: {}, stdin: chunks() });
    expect(viaFile.code, viaFile.stderr).toBe(3);
    expect(viaFile.stderr).toMatch(new RegExp(`^error: the Dockerfile on stdin \\(-f -\\) ${LIMIT}\n`));
    const asContext = await runMain(['--root', root, 'build', '-'], { env: {}, stdin: chunks() });
    expect(asContext.code, asContext.stderr).toBe(3);
    expect(asContext.stderr).toMatch(new RegExp(`^error: stdin \\(not a tar archive, so read as a Dockerfile\\) ${LIMIT} \\(17\\.0 MiB\\)\n`));
    expect(await leftovers()).toEqual([]);
  });

  it('from an http URL context it is refused, and nothing of the download is left', async () => {
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(bigText)) });
      res.end(bigText);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/Dockerfile`;
      const r = await cli(['--root', root, 'build', '--progress', 'quiet', url]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(new RegExp(`^error: ${url.replace(/[./]/g, '\\$&')} \\(not a tar archive, so read as a Dockerfile\\) ${LIMIT}`));
      expect(await leftovers()).toEqual([]);
    } finally {
      server.close();
    }
  });
});

describe('a .dockerignore over 16 MiB', () => {
  it('is refused naming it, before it is read whole (a sparse 100 MiB one), and nothing is tagged', async () => {
    const dir = await tempDir('ignsize');
    dirs.push(dir);
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    await writeFile(join(dir, '.dockerignore'), 'x\n');
    await truncate(join(dir, '.dockerignore'), 100 << 20);
    const r = await cli(['--root', root, 'build', '--progress', 'quiet', '-t', 'ign:1', dir]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toBe(`error: ${join(dir, '.dockerignore')} is larger than the 16 MiB a .dockerignore may have\n`);
    expect(await store.tags.get('docker.io/library/ign:1')).toBeUndefined();
  });
});
