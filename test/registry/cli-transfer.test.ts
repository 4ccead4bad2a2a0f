import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { main } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/commands/index.js';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { parseReference } from '../../src/image/reference.js';
import type { Manifest } from '../../src/image/types.js';
import { RegistryClient, StaticAuth, resolveManifest } from '../../src/registry/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { run, startRegistry, tempDir, removeDir, type RunningRegistry } from '../services/index.js';
import { noise } from './fixture.js';

async function tarOf(files: Record<string, Buffer | string>): Promise<Buffer> {
  const p = pack();
  for (const [name, content] of Object.entries(files)) p.entry({ name, mtime: new Date(0), mode: 0o644 }, content);
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** An image as the builder leaves it: uncompressed layer blobs (digest = diffID), OCI manifest, a tag. */
async function builtImage(s: Store, name: string, layers: Record<string, Buffer | string>[]): Promise<{ diffIds: Digest[] }> {
  const diffIds: Digest[] = [];
  const descs = [];
  for (const files of layers) {
    const tar = await tarOf(files);
    const { digest, size } = await s.blobs.putBytes(tar);
    diffIds.push(digest);
    descs.push({ mediaType: MediaType.OciLayer, digest, size });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const cfg = await s.blobs.putBytes(config);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size }, layers: descs };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const m = await s.blobs.putBytes(bytes);
  await s.tags.set(parseReference(name).toString(), { mediaType: MediaType.OciManifest, digest: m.digest, size: m.size });
  return { diffIds };
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const io: CliIO = { stdout, stderr, stdin: new PassThrough(), env: { ...process.env }, signal: new AbortController().signal };
  const code = await main(argv, io);
  return { code, out, err };
}

describe('tsbuild push / pull commands', () => {
  let reg: RunningRegistry;
  let dir: string;
  let root: string;
  let s: Store;
  let diffIds: Digest[];
  let client: RegistryClient;
  const name = 'local/app:v1';

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'open' });
    dir = await tempDir('reg-cli');
    root = join(dir, 'root');
    s = await openStore(root);
    ({ diffIds } = await builtImage(s, name, [{ 'etc/motd': 'hello\n' }, { 'data/blob': noise(200_000, 5), 'data/text': 'text '.repeat(20_000) }]));
    client = new RegistryClient({ auth: new StaticAuth({}), registriesConf: false });
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
    await removeDir(dir);
  });

  const remote = async (ref: string): Promise<Manifest> => JSON.parse((await resolveManifest(client, parseReference(ref))).bytes.toString()) as Manifest;

  it('pushes with gzip by default and prints docker-style plain progress and the digest line', async () => {
    const dest = `${reg.host}/cli/app:gz`;
    const r = await cli(['--root', root, 'push', '--progress', 'plain', name, dest]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const m = await remote(dest);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerGzip, MediaType.OciLayerGzip]);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe(`The push refers to repository [${reg.host}/cli/app]`);
    for (const l of m.layers) expect(lines).toContain(`${l.digest.slice(7, 19)}: Pushed`);
    const digest = (await resolveManifest(client, parseReference(dest))).digest;
    expect(lines.at(-1)).toMatch(new RegExp(`^${reg.host}/cli/app:gz: digest: ${digest} size: \\d+$`));
    // skopeo reads what we pushed.
    const inspected = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', `docker://${dest}`])) as { Digest: string };
    expect(inspected.Digest).toBe(digest);
  });

  it('a second push reuses the cached compressed layers and finds them in the registry', async () => {
    const cached = await Promise.all(diffIds.map((d) => s.compressed.get(d, 'gzip')));
    expect(cached.every((c) => c !== undefined)).toBe(true);
    const r = await cli(['--root', root, 'push', '--progress', 'plain', name, `${reg.host}/cli/app:again`]);
    expect(r.code).toBe(0);
    for (const c of cached) expect(r.out).toContain(`${c?.digest.slice(7, 19) ?? ''}: Layer already exists`);
    expect(r.out).not.toContain('Pushed');
    expect((await remote(`${reg.host}/cli/app:again`)).layers.map((l) => l.digest)).toEqual(cached.map((c) => c?.digest));
  });

  it('pushes zstd at a given level, and uncompressed', async () => {
    const z = await cli(['--root', root, 'push', '--compression', 'zstd', '--compression-level', '3', '--progress', 'quiet', name, `${reg.host}/cli/app:zstd`]);
    expect(z.code).toBe(0);
    expect(z.out).toMatch(/^[^\n]+:zstd: digest: sha256:[a-f0-9]{64} size: \d+\n$/);
    expect((await remote(`${reg.host}/cli/app:zstd`)).layers.map((l) => l.mediaType)).toEqual([MediaType.OciLayerZstd, MediaType.OciLayerZstd]);
    const u = await cli(['--root', root, 'push', '--compression', 'uncompressed', '--progress', 'quiet', name, `${reg.host}/cli/app:raw`]);
    expect(u.code).toBe(0);
    const raw = await remote(`${reg.host}/cli/app:raw`);
    expect(raw.layers.map((l) => [l.mediaType, l.digest])).toEqual(diffIds.map((d) => [MediaType.OciLayer, d]));
  });

  it('refuses bad flags with a usage error and pushes nothing', async () => {
    const bad = await cli(['--root', root, 'push', '--compression', 'brotli', name, `${reg.host}/cli/app:bad`]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--compression must be one of gzip, zstd, uncompressed/);
    const lvl = await cli(['--root', root, 'push', '--compression-level', '42', name, `${reg.host}/cli/app:bad`]);
    expect(lvl.err).toMatch(/--compression-level must be an integer from 0 to 9/);
    const mode = await cli(['--root', root, 'push', '--progress', 'fancy', name, `${reg.host}/cli/app:bad`]);
    expect(mode.err).toMatch(/unknown progress mode "fancy"/);
    await expect(resolveManifest(client, parseReference(`${reg.host}/cli/app:bad`))).rejects.toThrow(/not found/);
  });

  it('push --progress json writes one event object per line with layer counts', async () => {
    const r = await cli(['--root', root, 'push', '--compression', 'zstd', '--compression-level', '5', '--progress', 'json', name, `${reg.host}/cli/json:v1`]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    const events = lines.slice(0, -1).map((l) => JSON.parse(l) as { action: string; phase: string; layersDone: number; layers: number; bytes: number; total: number });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.action === 'push')).toBe(true);
    const finals = events.filter((e) => e.phase === 'done' || e.phase === 'exists' || e.phase === 'mounted');
    expect(finals).toHaveLength(2);
    expect(finals.at(-1)).toMatchObject({ layersDone: 2, layers: 2 });
    expect(lines.at(-1)).toMatch(/json:v1: digest: sha256:/);
  });

  it('pulls into a fresh store with plain progress, unpacking layers as they arrive', async () => {
    const other = join(dir, 'other');
    const src = `${reg.host}/cli/app:gz`;
    const r = await cli(['--root', other, 'pull', '--progress', 'plain', src]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const m = await remote(src);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe(`gz: Pulling from ${reg.host}/cli/app`);
    for (const l of m.layers) expect(lines).toContain(`${l.digest.slice(7, 19)}: Pull complete`);
    const digest = (await resolveManifest(client, parseReference(src))).digest;
    expect(lines.slice(-2)).toEqual([`Digest: ${digest}`, `Status: Downloaded newer image for ${src}`]);
    const s2 = await openStore(other);
    expect((await s2.tags.get(parseReference(src).toString()))?.digest).toBe(digest);
    for (const d of diffIds) expect(await s2.snapshots.has(d)).toBe(true);
    expect(sha256Digest(await s2.blobs.readBytes(m.config.digest))).toBe(m.config.digest);
    // A second pull finds every layer.
    const again = await cli(['--root', other, 'pull', '--progress', 'plain', src]);
    for (const l of m.layers) expect(again.out).toContain(`${l.digest.slice(7, 19)}: Already exists`);
  });

  it('pull --progress tty leaves only finished lines and the summary', async () => {
    const r = await cli(['--root', join(dir, 'tty'), 'pull', '--progress', 'tty', `${reg.host}/cli/app:zstd`]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Status: Downloaded newer image for /);
  });
});
