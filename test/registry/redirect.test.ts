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

describe('redirected blob downloads', () => {
  let reg: RunningRegistry;
  let proxy: FaultProxy;
  let storage: Server;
  let storageUrl: string;
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  let dir: string;
  let src: DirStore;
  let image: TestImage;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ mode: 'htpasswd-tls', users: [{ user: 'carol', password: 'pa55' }] });
    // Plain-HTTP loopback front for the TLS registry, so blob GETs can be answered with redirects.
    proxy = await startFaultProxy({ url: reg.url, ca: await readFile(reg.caFile ?? '', 'utf8') });
    dir = await tempDir('reg-redirect');
    src = new DirStore(join(dir, 'src'));
    image = await makeImage(src, [{ f: 'redirected layer' }]);
    // "Object storage" on another port: serves blobs and records what it was sent.
    storage = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      const digest = (req.url ?? '').slice(1) as Digest;
      src.readBytes(digest).then(
        (b) => res.writeHead(200, { 'content-length': b.length }).end(b),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
    storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;
    client = new RegistryClient({ auth: new StaticAuth({ [proxy.host]: { username: 'carol', password: 'pa55' } }) });
    await pushImage(client, src, parseReference(`${proxy.host}/r/app:v1`), image);
  });
  afterAll(async () => {
    await client?.close();
    await new Promise((resolve) => storage?.close(resolve));
    await proxy?.stop();
    await reg?.stop();
    await removeDir(dir);
  });

  it('follows the redirect without sending credentials to the other host', async () => {
    proxy.redirectBlobsTo(storageUrl);
    proxy.requests.length = 0;
    const pulled = await pullImage(client, parseReference(`${proxy.host}/r/app:v1`), new DirStore(join(dir, 'p1')));
    expect(pulled.manifestDigest).toBe(image.digest);
    const blobs = [image.manifest.config.digest, ...image.manifest.layers.map((l) => l.digest)].sort();
    expect(seen.map((s) => s.url.slice(1)).sort()).toEqual(blobs);
    for (const s of seen) expect(s.headers.authorization).toBeUndefined();
    // The registry itself did get the credentials.
    const manifestGet = proxy.requests.find((r) => r.url.includes('/manifests/'));
    expect(manifestGet?.headers.authorization).toBe(`Basic ${Buffer.from('carol:pa55').toString('base64')}`);
  });
});
