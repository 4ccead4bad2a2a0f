/** `-o` outputs through the CLI and the real builder: oci/docker archives (read by umoci/skopeo), local dir, rootfs tar, stdout, registry. */
import { execFile } from 'node:child_process';
import { lstat, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar } from '../../src/layers/index.js';
import type { Store } from '../../src/store/index.js';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { runCli } from './cli-helpers.js';
import { buildBusybox, makeContext, newStore, tempDir } from './helpers.js';

const exec = promisify(execFile);
let store: Store;
let root: string;
let ctx: string;
let out: string;
const cleanup: string[] = [];

beforeAll(async () => {
  ({ store, root } = await newStore());
  await buildBusybox(store);
  // The last layer deletes /bin/vi and /gone: the rootfs outputs must apply those whiteouts.
  ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nCOPY hello.txt /srv/hello.txt\nRUN mkdir /gone && touch /gone/x\nRUN rm -rf /gone /bin/vi\n', 'hello.txt': 'hello\n' });
  out = await tempDir('out');
  cleanup.push(root, ctx, out);
});

afterAll(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

const build = (...extra: string[]): ReturnType<typeof runCli> => runCli(['--root', root, 'build', '--progress', 'quiet', '-t', 'outs:v1', ...extra, ctx]);

async function tarNames(bytes: Buffer): Promise<string[]> {
  const names: string[] = [];
  for await (const { header, body } of readTar(Readable.from([bytes]))) {
    names.push(header.name);
    for await (const _ of body) void _;
  }
  return names;
}

describe('build outputs', () => {
  it('writes oci and docker archives that skopeo and umoci accept, several -o at once', async () => {
    const oci = join(out, 'img.oci.tar');
    const docker = join(out, 'img.docker.tar');
    const r = await build('-o', `type=oci,dest=${oci}`, '-o', `type=docker,dest=${docker}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const fromOci = JSON.parse((await exec('skopeo', ['inspect', '--raw', `oci-archive:${oci}`])).stdout) as { layers: unknown[] };
    expect(fromOci.layers).toHaveLength(6);
    const fromDocker = JSON.parse((await exec('skopeo', ['inspect', `docker-archive:${docker}`])).stdout) as { Layers: unknown[] };
    expect(fromDocker.Layers).toHaveLength(6);
    const layout = join(out, 'layout');
    await mkdir(layout);
    await exec('tar', ['-xf', oci, '-C', layout]);
    const bundle = join(out, 'bundle');
    await exec('umoci', ['unpack', '--rootless', '--image', `${layout}:docker.io/library/outs:v1`, bundle]);
    expect(await readFile(join(bundle, 'rootfs/srv/hello.txt'), 'utf8')).toBe('hello\n');
  });

  it('type=local (and the short form -o DIR) gives the final rootfs with whiteouts applied', async () => {
    const dir = join(out, 'local');
    const short = join(out, 'short');
    expect((await build('-o', `type=local,dest=${dir}`, '-o', short)).code).toBe(0);
    for (const d of [dir, short]) {
      expect(await readFile(join(d, 'srv/hello.txt'), 'utf8')).toBe('hello\n');
      expect((await lstat(join(d, 'bin/sh'))).isSymbolicLink()).toBe(true);
      await expect(lstat(join(d, 'gone'))).rejects.toThrow(/ENOENT/);
      await expect(lstat(join(d, 'bin/vi'))).rejects.toThrow(/ENOENT/);
      expect((await readdir(d)).filter((n) => n.startsWith('.wh.'))).toEqual([]);
    }
  });

  it('type=tar writes that rootfs as one tar, to a file or to stdout with dest=-', async () => {
    const file = join(out, 'rootfs.tar');
    expect((await build('-o', `type=tar,dest=${file}`)).code).toBe(0);
    const names = await tarNames(await readFile(file));
    expect(names).toContain('srv/hello.txt');
    expect(names).toContain('bin/busybox');
    expect(names.some((n) => n.startsWith('gone') || n === 'bin/vi' || n.includes('.wh.'))).toBe(false);
    const viaStdout = await build('-o', 'type=tar,dest=-');
    expect(viaStdout.code).toBe(0);
    expect(await tarNames(viaStdout.stdout)).toEqual(names);
  });

  it('rejects unknown output types and a missing dest', async () => {
    const bad = await build('-o', 'type=zip,dest=x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unsupported output type zip');
    const noDest = await build('-o', 'type=oci');
    expect(noDest.code).toBe(2);
    expect(noDest.stderr).toContain('needs dest=PATH');
  });

  describe('registry', () => {
    let reg: RunningRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ mode: 'open' });
    });
    afterAll(async () => {
      await reg.stop();
    });

    it('pushes with type=registry,name=REF and with --push', async () => {
      const named = `${reg.host}/outs/named:1`;
      const r = await runCli(['--root', root, 'build', '-q', '-o', `type=registry,name=${named}`, ctx]);
      // -q keeps stdout for the image ID alone; the push report goes to stderr.
      expect(r.stdout.toString()).toMatch(/^sha256:[0-9a-f]{64}\n$/);
      expect(r.stderr).toMatch(/^127\.0\.0\.1:\d+\/outs\/named:1: digest: sha256:[0-9a-f]{64} size: \d+\n$/);
      expect(r.code).toBe(0);
      const tag = `${reg.host}/outs/pushed:2`;
      const p = await runCli(['--root', root, 'build', '--progress', 'plain', '-t', tag, '--push', ctx]);
      expect(p.code).toBe(0);
      for (const ref of [named, tag]) {
        const raw = JSON.parse((await exec('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${ref}`])).stdout) as { layers: { mediaType: string }[] };
        expect(raw.layers).toHaveLength(6);
        expect(raw.layers.every((l) => l.mediaType.endsWith('tar+gzip'))).toBe(true);
      }
    });
  });
});
