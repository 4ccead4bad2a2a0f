/**
 * images / history / inspect / tag / rmi through the CLI on a real store, compared with docker's
 * layout rules (tabwriter columns, go-units sizes, "N hours ago", 45-char CREATED BY, <missing>).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/execute.js';
import type { ImageConfig, Manifest } from '../../src/image/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { cli, removeAll, tempDir, writeTree } from './helpers.js';

const dirs: string[] = [];
let root: string;
let store: Store;
let manifest: Manifest;
let config: ImageConfig;
let id: string;
const LONG = `LONG=${'a'.repeat(60)}`;
// Three hours ago, so CREATED reads "3 hours ago" for the whole run.
const EPOCH = Math.floor(Date.now() / 1000) - 3 * 3600;

beforeAll(async () => {
  root = await tempDir('images');
  const ctx = await tempDir('images-ctx');
  dirs.push(root, ctx);
  await writeTree(ctx, { Dockerfile: `FROM scratch\nCOPY a.txt /a.txt\nENV ${LONG}\nCMD ["/a.txt"]\n`, 'a.txt': 'hello\n' });
  store = await openStore(root);
  const result = await build({ contextDir: ctx, tags: ['docker.io/library/app:v1'], sourceDateEpoch: EPOCH }, { store });
  manifest = await store.blobs.readJson<Manifest>(result.manifestDigest);
  config = await store.blobs.readJson<ImageConfig>(result.configDigest);
  id = result.configDigest.slice(7, 19);
  expect((await cli(['--root', root, 'tag', 'app:v1', 'localhost:5000/team/app:v2'])).code).toBe(0);
});
afterAll(() => removeAll(dirs));

describe('images', () => {
  it("prints docker's columns: 3-space padding, 1000-based sizes, N hours ago", async () => {
    const size = manifest.layers.reduce((n, l) => n + l.size, 0);
    expect(size).toBe(2048);
    const r = await cli(['--root', root, 'images']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'REPOSITORY                TAG       IMAGE ID       CREATED       SIZE\n' +
        `app                       v1        ${id}   3 hours ago   2.05kB\n` +
        `localhost:5000/team/app   v2        ${id}   3 hours ago   2.05kB\n`,
    );
  });

  it('-q prints unique IDs; --no-trunc full IDs; --format json and templates', async () => {
    expect((await cli(['--root', root, 'images', '-q'])).stdout).toBe(`${id}\n`);
    expect((await cli(['--root', root, 'images', '--no-trunc'])).stdout).toContain(`   ${config.rootfs.diff_ids.length > 0 ? manifest.config.digest : ''}   `);
    const json = (await cli(['--root', root, 'images', '--format', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    expect(json[0]).toMatchObject({ Repository: 'app', Tag: 'v1', ID: id, Size: '2.05kB', CreatedSince: '3 hours ago' });
    expect(Object.keys(json[0] ?? {})).toEqual([...Object.keys(json[0] ?? {})].sort());
    expect((await cli(['--root', root, 'images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout).toBe('app:v1\nlocalhost:5000/team/app:v2\n');
  });
});

describe('history', () => {
  it("prints docker's columns with <missing> ids, truncated CREATED BY and sizes", async () => {
    const r = await cli(['--root', root, 'history', 'app:v1']);
    expect(r.code).toBe(0);
    const comment = config.history?.[0]?.comment ?? '';
    const by = `ENV ${LONG}`.slice(0, 44);
    const cb = 'CREATED BY'.padEnd(48);
    expect(r.stdout).toBe(
      `IMAGE          CREATED       ${cb}SIZE      COMMENT\n` +
        `${id}   3 hours ago   ${'CMD ["/a.txt"]'.padEnd(48)}0B        ${comment}\n` +
        `<missing>      3 hours ago   ${by}…   0B        ${comment}\n` +
        `<missing>      3 hours ago   ${'COPY a.txt /a.txt # buildkit'.padEnd(48)}2.05kB    ${comment}\n`,
    );
  });

  it('--no-trunc shows full ids and commands; -q only ids', async () => {
    const r = await cli(['--root', root, 'history', '--no-trunc', 'app:v1']);
    expect(r.stdout).toContain(`${manifest.config.digest}   3 hours ago   CMD ["/a.txt"]`);
    expect(r.stdout).toContain(`ENV ${LONG}   0B`);
    expect((await cli(['--root', root, 'history', '-q', 'app:v1'])).stdout).toBe(`${id}\n<missing>\n<missing>\n`);
  });

  it('--format json prints one docker-shaped object per line', async () => {
    const r = await cli(['--root', root, 'history', '--format', 'json', 'app:v1']);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    const created = new Date(EPOCH * 1000).toISOString().replace('.000Z', 'Z');
    expect(lines).toEqual([
      { Comment: config.history?.[2]?.comment ?? '', CreatedAt: created, CreatedBy: 'CMD ["/a.txt"]', CreatedSince: '3 hours ago', ID: id, Size: '0B' },
      { Comment: config.history?.[1]?.comment ?? '', CreatedAt: created, CreatedBy: `ENV ${LONG}`.slice(0, 44) + '…', CreatedSince: '3 hours ago', ID: '<missing>', Size: '0B' },
      { Comment: config.history?.[0]?.comment ?? '', CreatedAt: created, CreatedBy: 'COPY a.txt /a.txt # buildkit', CreatedSince: '3 hours ago', ID: '<missing>', Size: '2.05kB' },
    ]);
  });

  it('-H=false prints raw sizes and RFC 3339 dates', async () => {
    const r = await cli(['--root', root, 'history', '-H=false', '--format', '{{.CreatedSince}} {{.Size}}', 'app:v1']);
    const created = new Date(EPOCH * 1000).toISOString().replace('.000Z', 'Z');
    expect(r.stdout).toBe(`${created} 0\n${created} 0\n${created} 2048\n`);
  });
});

describe('inspect', () => {
  it("prints docker's image inspect JSON (4-space indent) plus the manifest", async () => {
    const r = await cli(['--root', root, 'inspect', 'app:v1']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[2]).toBe(`        "Id": "${manifest.config.digest}",`);
    const [info] = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(Object.keys(info ?? {})).toEqual(['Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'DockerVersion', 'Author', 'Config', 'Architecture', 'Os', 'Size', 'RootFS', 'Metadata', 'Descriptor', 'Manifest']);
    const tagDesc = await store.tags.get('docker.io/library/app:v1');
    expect(info).toMatchObject({
      Id: manifest.config.digest,
      RepoTags: ['app:v1', 'localhost:5000/team/app:v2'],
      RepoDigests: [`app@${tagDesc?.digest ?? ''}`, `localhost:5000/team/app@${tagDesc?.digest ?? ''}`],
      Created: new Date(EPOCH * 1000).toISOString().replace('.000Z', 'Z'),
      Config: config.config,
      Architecture: 'amd64',
      Os: 'linux',
      Size: 2048,
      RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
      Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
      Descriptor: { mediaType: tagDesc?.mediaType, digest: tagDesc?.digest, size: tagDesc?.size },
      Manifest: manifest,
    });
  });

  it.each([
    ['{{.Id}}', () => manifest.config.digest],
    ['{{.Config.Env}}', () => `[${(config.config?.Env ?? []).join(' ')}]`],
    ['{{json .Config}}', () => JSON.stringify(config.config)],
    ['{{index .RepoTags 0}}', () => 'app:v1'],
    ['{{range .RootFS.Layers}}{{.}}\\n{{end}}', () => `${config.rootfs.diff_ids.join('\n')}\n`],
    ['{{.Os}}/{{.Architecture}}', () => 'linux/amd64'],
  ])('--format %s', async (template, want) => {
    for (const flag of ['--format', '-f']) {
      const r = await cli(['--root', root, 'inspect', flag, template, 'app:v1']);
      expect(r).toEqual({ code: 0, stdout: `${want()}\n`, stderr: '' });
    }
  });

  it('finds images by ID prefix and reports unknown ones (exit 5) and bad templates (exit 2)', async () => {
    expect((await cli(['--root', root, 'inspect', '-f', '{{.Id}}', id])).stdout).toBe(`${manifest.config.digest}\n`);
    const missing = await cli(['--root', root, 'inspect', 'nope:1']);
    expect(missing.code).toBe(5);
    expect(missing.stderr).toBe('error: image nope:1 not found in the local store\nhint: see `tsbuild images`\n');
    const bad = await cli(['--root', root, 'inspect', '-f', '{{.Nope}}', 'app:v1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('error: template: can\'t evaluate field Nope');
    expect((await cli(['--root', root, 'inspect'])).code).toBe(2);
  });
});

describe('tag and rmi', () => {
  it('tags, untags with docker messages and leaves the other names', async () => {
    expect((await cli(['--root', root, 'tag', 'app:v1', 'app:extra'])).code).toBe(0);
    expect((await cli(['--root', root, 'images', '--format', '{{.Tag}}'])).stdout.split('\n').sort().join(' ').trim()).toBe('extra v1 v2');
    expect(await cli(['--root', root, 'rmi', 'app:extra'])).toEqual({ code: 0, stdout: 'Untagged: app:extra\n', stderr: '' });
    expect((await cli(['--root', root, 'rmi'])).code).toBe(2);
    expect((await cli(['--root', root, 'tag', 'app:v1'])).code).toBe(2);
    expect((await cli(['--root', root, 'tag', 'app:v1', 'Bad Name'])).code).toBe(4);
  });
});
