import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, StaticAuth, loadRegistriesConf, parseRegistriesConf, pullImage, pushImage } from '../../src/registry/index.js';
import { freePort, startFaultProxy, startRegistry, tempDir, removeDir, type FaultProxy, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { makeImage, type TestImage } from './fixture.js';

describe('registries.conf parsing', () => {
  it('reads mirrors, insecure flags and digest-only mirrors, ignoring other tables', () => {
    const conf = parseRegistriesConf(`
unqualified-search-registries = [
  "docker.io", # trailing comment
  "quay.io",
]
short-name-mode = "enforcing"

[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000"
insecure = true
[[registry.mirror]]
location = 'pinned.local'
pull-from-mirror = "digest-only"

[[registry]]
prefix = "quay.io"
location = "quay.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "quay-mirror.local"

[[registry]]
location = "internal.local:5000"
insecure = true

[[registry]]
prefix = "docker.io/library"
location = "elsewhere.local"

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
`);
    expect(conf.mirrors).toEqual({
      'docker.io': [{ host: 'mirror.local:5000', digestOnly: false }, { host: 'pinned.local', digestOnly: true }],
      'quay.io': [{ host: 'quay-mirror.local', digestOnly: true }],
      'internal.local:5000': [],
    });
    expect(conf.insecure.sort()).toEqual(['internal.local:5000', 'mirror.local:5000']);
  });

  it('names the file and line of a syntax error', () => {
    expect(() => parseRegistriesConf('[[registry]]\nlocation = "a"\ninsecure = maybe\n', '/etc/r.conf')).toThrow(/^\/etc\/r\.conf:3: bad value maybe$/);
    expect(() => parseRegistriesConf('[[registry.mirror]]\n', 'r.conf')).toThrow(/r\.conf:1: \[\[registry\.mirror\]\] before any \[\[registry\]\]/);
  });

  it('treats a missing file as no mirrors and merges drop-ins', async () => {
    const dir = await tempDir('reg-conf');
    try {
      expect(await loadRegistriesConf(join(dir, 'none.conf'))).toEqual({ mirrors: {}, insecure: [] });
      await mkdir(join(dir, 'registries.conf.d'));
      await writeFile(join(dir, 'registries.conf'), '[[registry]]\nlocation = "a.local"\n[[registry.mirror]]\nlocation = "m1.local"\n');
      await writeFile(join(dir, 'registries.conf.d', '10-b.conf'), '[[registry]]\nlocation = "b.local"\ninsecure = true\n');
      expect(await loadRegistriesConf(join(dir, 'registries.conf'))).toEqual({
        mirrors: { 'a.local': [{ host: 'm1.local', digestOnly: false }], 'b.local': [] },
        insecure: ['b.local'],
      });
    } finally {
      await removeDir(dir);
    }
  });
});

describe('pull mirrors from registries.conf against real registries', () => {
  let origin: RunningRegistry;
  let empty: RunningRegistry;
  let failing: FaultProxy;
  let dir: string;
  let src: DirStore;
  let image: TestImage;

  beforeAll(async () => {
    [origin, empty] = await Promise.all([startRegistry({ mode: 'open' }), startRegistry({ mode: 'open' })]);
    failing = await startFaultProxy({ url: empty.url });
    dir = await tempDir('reg-mirrors');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ m: 'mirrored layer' }]);
    const c = new RegistryClient({ auth: new StaticAuth({}), registriesConf: false });
    await pushImage(c, src, parseReference(`${origin.host}/m/app:v1`), image);
    await c.close();
  });
  afterAll(async () => {
    await failing?.stop();
    await Promise.all([origin?.stop(), empty?.stop()]);
    await removeDir(dir);
  });

  const withConf = async (name: string, text: string): Promise<RegistryClient> => {
    const file = join(dir, `${name}.conf`);
    await writeFile(file, text);
    return new RegistryClient({ auth: new StaticAuth({}), registriesConf: file, retry: { attempts: 2, baseDelayMs: 10 } });
  };

  it('falls back to the origin when mirrors answer 404 and 500', async () => {
    const client = await withConf('fallback', `[[registry]]\nlocation = "${origin.host}"\n[[registry.mirror]]\nlocation = "${empty.host}"\n[[registry.mirror]]\nlocation = "${failing.host}"\n`);
    failing.failNext(100, 500);
    try {
      const pulled = await pullImage(client, parseReference(`${origin.host}/m/app:v1`), new DirStore(join(dir, 'p1')));
      expect(pulled.manifestDigest).toBe(image.digest);
      expect(failing.requests.filter((r) => r.url.includes('/manifests/')).map((r) => r.status)).toEqual([500, 500]);
    } finally {
      failing.failNext(0);
      await client.close();
    }
  });

  it('pulls everything from a mirror that has the image, even with the origin down', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const client = await withConf('mirror', `[[registry]]\nlocation = "${dead}"\n[[registry.mirror]]\nlocation = "${origin.host}"\n`);
    try {
      const pulled = await pullImage(client, parseReference(`${dead}/m/app:v1`), new DirStore(join(dir, 'p2')));
      expect(pulled.manifestDigest).toBe(image.digest);
    } finally {
      await client.close();
    }
  });

  it('uses a digest-only mirror for digest references and not for tags', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const client = await withConf('digest', `[[registry]]\nlocation = "${dead}"\n[[registry.mirror]]\nlocation = "${origin.host}"\npull-from-mirror = "digest-only"\n`);
    try {
      expect(await client.pullHosts(dead, false)).toEqual([dead]);
      const pulled = await pullImage(client, parseReference(`${dead}/m/app@${image.digest}`), new DirStore(join(dir, 'p3')));
      expect(pulled.manifestDigest).toBe(image.digest);
      await expect(pullImage(client, parseReference(`${dead}/m/app:v1`), new DirStore(join(dir, 'p4')))).rejects.toThrow(/cannot connect|connection/);
    } finally {
      await client.close();
    }
  });
});
