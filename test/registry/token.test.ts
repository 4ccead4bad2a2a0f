import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, StaticAuth, login, pullImage, pushImage } from '../../src/registry/index.js';
import { startRegistry, run, tempDir, removeDir, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { makeImage, type TestImage } from './fixture.js';

describe('token-auth registry', () => {
  let reg: RunningRegistry;
  let dir: string;
  let src: DirStore;
  let image: TestImage;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'token', users: [{ user: 'bob', password: 'b0b' }] });
    dir = await tempDir('reg-token');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ a: 'one' }, { b: 'two' }]);
    client = new RegistryClient({ auth: new StaticAuth({ [reg.host]: { username: 'bob', password: 'b0b' } }) });
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
    await removeDir(dir);
  });

  it('pushes and pulls through the bearer token flow with the right scopes, caching tokens', async () => {
    const issuer = reg.tokenIssuer;
    if (!issuer) throw new Error('no token issuer');
    const ref = parseReference(`${reg.host}/team/app:v1`);
    expect((await pushImage(client, src, ref, image)).digest).toBe(image.digest);
    expect(issuer.requests.map((r) => r.scopes)).toEqual([['repository:team/app:pull,push']]);
    expect(issuer.requests[0]?.user).toBe('bob');

    const pulled = await pullImage(client, ref, new DirStore(join(dir, 'p1')));
    expect(pulled.manifestDigest).toBe(image.digest);
    expect(issuer.requests.map((r) => r.scopes)).toEqual([['repository:team/app:pull,push'], ['repository:team/app:pull']]);

    // A mount asks for pull on the source repository in the same token.
    await pushImage(client, src, parseReference(`${reg.host}/team/copy:v1`), image, { mountFrom: ['team/app'] });
    expect(issuer.requests.at(-1)?.scopes.sort()).toEqual(['repository:team/app:pull', 'repository:team/copy:pull,push']);

    const out = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', 'bob:b0b', `docker://${ref.toString()}`]);
    expect((JSON.parse(out) as { Digest: string }).Digest).toBe(image.digest);
  });

  it('anonymous access is refused with an unauthorized error', async () => {
    const anon = new RegistryClient({ auth: new StaticAuth({}) });
    try {
      const err = await pullImage(anon, parseReference(`${reg.host}/team/app:v1`), new DirStore(join(dir, 'p2'))).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REGISTRY', status: 401, registryCodes: ['UNAUTHORIZED'] });
      expect((err as Error).message).toMatch(/unauthorized/);
    } finally {
      await anon.close();
    }
  });

  it('login verifies credentials through the token server', async () => {
    const configDir = join(dir, 'docker');
    await expect(login(reg.host, 'bob', 'nope', { configDir })).rejects.toMatchObject({ code: 'REGISTRY', status: 401 });
    await login(reg.host, 'bob', 'b0b', { configDir });
  });
});

describe('short-lived tokens', () => {
  it('fetches a new token once the cached one expires', async () => {
    const reg = await startRegistry({ mode: 'token', tokenExpiresIn: 6 });
    const dir = await tempDir('reg-token-exp');
    const [u] = reg.users;
    const client = new RegistryClient({ auth: new StaticAuth({ [reg.host]: { username: u?.user ?? '', password: u?.password ?? '' } }) });
    try {
      const src = new DirStore(join(dir, 'src'));
      const image = await makeImage(src, [{ e: 'exp' }]);
      const ref = parseReference(`${reg.host}/exp/app:v1`);
      await pushImage(client, src, ref, image);
      await pullImage(client, ref, new DirStore(join(dir, 'p1')));
      const before = reg.tokenIssuer?.requests.length ?? 0;
      await pullImage(client, ref, new DirStore(join(dir, 'p2')));
      expect(reg.tokenIssuer?.requests.length).toBe(before); // still cached
      // The client refreshes 1 s before expiry: wait on the issuer's record of when it issued the
      // token, not on how long the pulls took, so load on the machine cannot shift the outcome.
      const issuedAt = reg.tokenIssuer?.requests.at(-1)?.at ?? Date.now();
      await new Promise((r) => setTimeout(r, Math.max(0, issuedAt + 5_000 + 200 - Date.now())));
      await pullImage(client, ref, new DirStore(join(dir, 'p3')));
      expect(reg.tokenIssuer?.requests.length).toBe(before + 1);
    } finally {
      await client.close();
      await reg.stop();
      await removeDir(dir);
    }
  });
});
