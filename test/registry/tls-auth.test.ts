import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import { DockerConfigAuth, RegistryClient, StaticAuth, login, logout, pullImage, pushImage, type DockerConfigFile } from '../../src/registry/index.js';
import { makeCertsDir, makeServerCerts, startRegistry, run, tempDir, removeDir, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { makeImage, type TestImage } from './fixture.js';

describe('htpasswd + TLS registry', () => {
  let reg: RunningRegistry;
  let dir: string;
  let src: DirStore;
  let image: TestImage;
  const clients: RegistryClient[] = [];
  const newClient = (o: ConstructorParameters<typeof RegistryClient>[0]): RegistryClient => {
    const c = new RegistryClient(o);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'htpasswd-tls', users: [{ user: 'alice', password: 'wonder land' }] });
    dir = await tempDir('reg-tls');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ 'etc/motd': 'tls\n' }]);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
    await removeDir(dir);
  });

  it('refuses an untrusted certificate with a hint about certs.d', async () => {
    const client = newClient({ auth: new DockerConfigAuth(join(dir, 'none')), certsDir: join(dir, 'empty-certs') });
    const err = await pullImage(client, parseReference(`${reg.host}/x/y:1`), new DirStore(join(dir, 'p0'))).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY', message: `${reg.host}: TLS certificate not trusted` });
    expect((err as { hint?: string }).hint).toContain('ca.crt');
  });

  it('rejects wrong credentials at login and writes nothing', async () => {
    const configDir = join(dir, 'docker-bad');
    const err = await login(reg.host, 'alice', 'Sekr3t-Guess', { configDir, client: { certsDir: reg.certsDir ?? '' } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY', status: 401 });
    expect(JSON.stringify({ m: (err as Error).message, h: (err as { hint?: string }).hint, s: (err as Error).stack })).not.toMatch(/Sekr3t|U2Vrcj/);
    await expect(readFile(join(configDir, 'config.json'))).rejects.toThrow(/ENOENT/);
  });

  it('logs in, pushes and pulls over TLS with the CA from certsDir', async () => {
    const configDir = join(dir, 'docker');
    await login(reg.host, 'alice', 'wonder land', { configDir, client: { certsDir: reg.certsDir ?? '' } });
    const config = JSON.parse(await readFile(join(configDir, 'config.json'), 'utf8')) as DockerConfigFile;
    expect(config.auths?.[reg.host]?.auth).toBe(Buffer.from('alice:wonder land').toString('base64'));

    const client = newClient({ auth: new DockerConfigAuth(configDir), certsDir: reg.certsDir ?? '' });
    const ref = parseReference(`${reg.host}/secure/app:v1`);
    expect((await pushImage(client, src, ref, image)).digest).toBe(image.digest);
    const pulled = await pullImage(client, ref, new DirStore(join(dir, 'p1')));
    expect(pulled.manifestDigest).toBe(image.digest);

    // skopeo with the same CA folder and credentials sees the same image.
    const out = await run('skopeo', ['inspect', '--cert-dir', join(reg.certsDir ?? '', reg.host), '--creds', 'alice:wonder land', `docker://${ref.toString()}`]);
    expect((JSON.parse(out) as { Digest: string }).Digest).toBe(image.digest);

    expect(await logout(reg.host, { configDir })).toBe(true);
    expect(await logout(reg.host, { configDir })).toBe(false);
    const fresh = newClient({ auth: new DockerConfigAuth(configDir), certsDir: reg.certsDir ?? '' });
    await expect(pullImage(fresh, ref, new DirStore(join(dir, 'p2')))).rejects.toMatchObject({ status: 401 });
  });

  it('keeps trusting NODE_EXTRA_CA_CERTS next to a certs.d CA (an explicit CA list replaces Node\'s store)', async () => {
    // certs.d for the registry holds an unrelated CA; the registry's own CA is only in NODE_EXTRA_CA_CERTS.
    const other = await makeServerCerts(join(dir, 'other-ca'));
    const certsDir = await makeCertsDir(join(dir, 'unrelated-certs'), reg.host, other.caFile);
    const ref = parseReference(`${reg.host}/secure/extra:v1`);
    const auth = new StaticAuth({ [reg.host]: { username: 'alice', password: 'wonder land' } });
    const before = process.env.NODE_EXTRA_CA_CERTS;
    try {
      process.env.NODE_EXTRA_CA_CERTS = reg.caFile ?? '';
      expect((await pushImage(newClient({ auth, certsDir }), src, ref, image)).digest).toBe(image.digest);
      delete process.env.NODE_EXTRA_CA_CERTS;
      const err = await pullImage(newClient({ auth, certsDir, retry: { attempts: 1 } }), ref, new DirStore(join(dir, 'p-extra'))).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REGISTRY', message: `${reg.host}: TLS certificate not trusted` });
    } finally {
      if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = before;
    }
  });

  it('reads username/password entries and credential helpers from config.json', async () => {
    const configDir = join(dir, 'docker-helper');
    const helperDir = join(dir, 'bin');
    await run('mkdir', ['-p', configDir, helperDir]);
    // A real credential helper executable speaking docker's protocol.
    await writeFile(
      join(helperDir, 'docker-credential-tsbtest'),
      `#!/bin/sh\nread server\nif [ "$1" = get ] && [ "$server" = "${reg.host}" ]; then echo '{"ServerURL":"${reg.host}","Username":"alice","Secret":"wonder land"}'; exit 0; fi\necho "credentials not found in native keychain"; exit 1\n`,
      { mode: 0o755 },
    );
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.host]: 'tsbtest' } }));
    const oldPath = process.env['PATH'];
    process.env['PATH'] = `${helperDir}:${oldPath ?? ''}`;
    try {
      const auth = new DockerConfigAuth(configDir);
      expect(await auth.credentials(reg.host)).toEqual({ username: 'alice', password: 'wonder land' });
      expect(await auth.credentials('other.example:5000')).toBeUndefined();
      const client = newClient({ auth, certsDir: reg.certsDir ?? '' });
      expect((await pullImage(client, parseReference(`${reg.host}/secure/app:v1`), new DirStore(join(dir, 'p3')))).manifestDigest).toBe(image.digest);
    } finally {
      process.env['PATH'] = oldPath;
    }
    await writeFile(join(configDir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}`]: { username: 'alice', password: 'wonder land' } } }));
    expect(await new DockerConfigAuth(configDir).credentials(reg.host)).toEqual({ username: 'alice', password: 'wonder land' });
  });
});

describe('mutual TLS registry', () => {
  let reg: RunningRegistry;
  let dir: string;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'htpasswd-tls', mutualTls: true, users: [{ user: 'dave', password: 'd' }] });
    dir = await tempDir('reg-mtls');
  });
  afterAll(async () => {
    await reg?.stop();
    await removeDir(dir);
  });

  it('presents the client certificate from certsDir and is refused without it', async () => {
    const src = new DirStore(join(dir, 'src'));
    const image = await makeImage(src, [{ m: 'mtls' }]);
    const ref = parseReference(`${reg.host}/m/app:v1`);
    const auth = new StaticAuth({ [reg.host]: { username: 'dave', password: 'd' } });
    const withCert = new RegistryClient({ auth, certsDir: reg.certsDir ?? '' });
    const caOnly = join(dir, 'ca-only');
    await makeCertsDir(caOnly, reg.host, reg.caFile ?? '');
    const withoutCert = new RegistryClient({ auth, certsDir: caOnly, retry: { attempts: 1 } });
    try {
      expect((await pushImage(withCert, src, ref, image)).digest).toBe(image.digest);
      await expect(pullImage(withoutCert, ref, new DirStore(join(dir, 'p')))).rejects.toMatchObject({ code: 'REGISTRY' });
    } finally {
      await withCert.close();
      await withoutCert.close();
    }
  });
});
