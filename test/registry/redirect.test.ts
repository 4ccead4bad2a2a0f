import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseReference } from '../../src/image/reference.js';
import type { Digest } from '../../src/image/digest.js';
import { RegistryClient, StaticAuth, pullImage, pushImage } from '../../src/registry/index.js';
import { startFaultProxy, startRegistry, tempDir, removeDir, type FaultProxy, type RunningRegistry } from '../services/index.js';
import { DirStore } from './dir-store.js';
import { makeImage, type TestImage } from './fixture.js';

/** "Object storage" on another origin: serves blobs from `src` and records what it was sent. */
async function startStorage(src: DirStore, address: string, seen: { url: string; headers: IncomingHttpHeaders }[]): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const digest = (req.url ?? '').split('?')[0]?.slice(1) as Digest;
    src.readBytes(digest).then(
      (b) => res.writeHead(200, { 'content-length': b.length }).end(b),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return { server, url: `http://${address}:${(server.address() as AddressInfo).port}` };
}

// CVE-2020-15157 class: credentials must never follow a redirect to another origin.
describe.each([
  { auth: 'Basic', mode: 'htpasswd-tls' as const },
  { auth: 'Bearer', mode: 'token' as const },
])('redirected blob downloads with $auth auth', ({ auth, mode }) => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const servers: Server[] = [];
  let dir: string;
  let src: DirStore;
  let image: TestImage;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ mode, users: [{ user: 'carol', password: 'pa55' }] });
    // Plain-HTTP loopback front for the registry, so blob GETs can be answered with redirects.
    proxy = await startFaultProxy({ url: reg.url, ...(reg.caFile !== undefined ? { ca: await readFile(reg.caFile, 'utf8') } : {}) });
    dir = await tempDir('reg-redirect');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ f: 'redirected layer' }]);
    client = new RegistryClient({ auth: new StaticAuth({ [proxy.host]: { username: 'carol', password: 'pa55' } }), registriesConf: false });
    await pushImage(client, src, parseReference(`${proxy.host}/r/app:v1`), image);
  });
  afterAll(async () => {
    await client?.close();
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
    await proxy?.stop();
    await reg?.stop();
    await removeDir(dir);
  });

  it.each([
    { target: 'another port on the same host', address: '127.0.0.1' },
    { target: 'another host', address: '127.0.0.2' },
  ])('follows a redirect to $target without sending credentials there', async ({ address }) => {
    seen.length = 0;
    const storage = await startStorage(src, address, seen);
    servers.push(storage.server);
    proxy.redirectBlobsTo(storage.url);
    proxy.requests.length = 0;
    const pulled = await pullImage(client, parseReference(`${proxy.host}/r/app:v1`), new DirStore(join(dir, `p-${address}`)));
    proxy.redirectBlobsTo(undefined);
    expect(pulled.manifestDigest).toBe(image.digest);
    const blobs = [image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)].sort();
    expect(seen.map((s) => s.url.slice(1)).sort()).toEqual(blobs);
    for (const s of seen) {
      expect(s.headers.authorization).toBeUndefined();
      expect(s.headers.cookie).toBeUndefined();
    }
    // The registry itself did get the credentials.
    const manifestGet = proxy.requests.find((r) => r.url.includes('/manifests/'));
    const sent = manifestGet?.headers.authorization ?? '';
    if (auth === 'Basic') expect(sent).toBe(`Basic ${Buffer.from('carol:pa55').toString('base64')}`);
    else expect(sent).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const blobGets = proxy.requests.filter((r) => r.url.includes('/blobs/sha256:'));
    expect(blobGets.map((r) => r.status)).toEqual(blobs.map(() => 307));
    for (const r of blobGets) expect(r.headers.authorization?.startsWith(auth)).toBe(true);
  });
});
