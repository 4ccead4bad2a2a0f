import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, StaticAuth, pullImage, resolveManifest } from '../../src/registry/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../services/index.js';
import { gzipSync } from 'node:zlib';
import { pullIntoStore } from '../../src/builder/pull-image.js';
import { makeTar } from '../layers/fixtures.js';
import { noise } from './fixture.js';

/** A registry that misbehaves on purpose: each test installs the handler for manifests and blobs. */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;

function json(o: unknown): Buffer {
  return Buffer.from(JSON.stringify(o));
}

describe('hostile registry', () => {
  let server: Server;
  let host: string;
  let handler: Handler = (_req, res) => res.writeHead(404).end();
  let dir: string;
  let store: Store;
  let client: RegistryClient;
  const configBytes = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const config = { mediaType: MediaType.OciConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  const layer = noise(300_000, 7);
  const layerDesc = { mediaType: MediaType.OciLayerGzip, digest: sha256Digest(layer), size: layer.length };
  const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layerDesc] };

  /** Serve `manifest` for every manifest GET and the given blob bodies; unknown paths 404. */
  const serve = (manifestBody: Buffer, contentType: string, blobs: Record<string, Handler> = {}): void => {
    handler = (req, res) => {
      const path = req.url ?? '';
      if (path.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': contentType, 'content-length': manifestBody.length }).end(manifestBody);
        return;
      }
      const digest = path.slice(path.lastIndexOf('/') + 1);
      const blob = blobs[digest];
      if (blob) blob(req, res);
      else if (digest === config.digest) res.writeHead(200, { 'content-length': configBytes.length }).end(configBytes);
      else if (digest === layerDesc.digest) res.writeHead(200, { 'content-length': layer.length }).end(layer);
      else res.writeHead(404).end();
    };
  };
  const ref = (tag = 'v1'): ReturnType<typeof parseReference> => parseReference(`${host}/evil/app:${tag}`);
  const storeIsEmpty = async (): Promise<void> => {
    expect(await readdir(join(store.root, 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(store.tmpDir)).toEqual([]);
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v2/') res.writeHead(200).end('{}');
      else handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = await tempDir('reg-hostile');
    client = new RegistryClient({
      auth: new StaticAuth({}),
      registriesConf: false,
      retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
      timeouts: { headersMs: 400, bodyMs: 400 },
    });
  });
  afterEach(async () => {
    await removeDir(join(dir, 'store'));
  });
  afterAll(async () => {
    await client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await removeDir(dir);
  });
  const freshStore = async (): Promise<Store> => (store = await openStore(join(dir, 'store')));

  it('CVE-2021-41190: refuses a document with both manifests and layers', async () => {
    serve(json({ ...manifest, manifests: [] }), MediaType.OciManifest);
    await expect(resolveManifest(client, ref())).rejects.toThrow(/ambiguous manifest with both "manifests" and "layers".*CVE-2021-41190/);
  });

  it('CVE-2021-41190: refuses a body whose mediaType disagrees with Content-Type', async () => {
    serve(json(manifest), MediaType.OciIndex);
    await expect(resolveManifest(client, ref())).rejects.toMatchObject({
      code: 'REGISTRY',
      message: expect.stringMatching(/body says mediaType application\/vnd\.oci\.image\.manifest\.v1\+json but Content-Type is application\/vnd\.oci\.image\.index\.v1\+json/) as unknown,
    });
  });

  it('CVE-2021-41190: refuses a manifest typed as an index that has no manifests', async () => {
    serve(json({ ...manifest, mediaType: MediaType.OciIndex }), MediaType.OciIndex);
    await expect(resolveManifest(client, ref())).rejects.toThrow(/does not match its media type/);
  });

  it('CVE-2021-41190: refuses a child manifest whose type is not what the index descriptor said', async () => {
    const child = json({ ...manifest, mediaType: MediaType.DockerManifest });
    const index = json({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciManifest, digest: sha256Digest(child), size: child.length, platform: { os: 'linux', architecture: 'amd64' } }],
    });
    handler = (req, res) => {
      const body = (req.url ?? '').endsWith(sha256Digest(child)) ? child : index;
      res.writeHead(200, { 'content-type': (JSON.parse(body.toString()) as { mediaType: string }).mediaType }).end(body);
    };
    await expect(pullImage(client, ref(), (await freshStore()).blobs)).rejects.toThrow(/index descriptor says application\/vnd\.oci\.image\.manifest\.v1\+json/);
    await storeIsEmpty();
  });

  it('refuses a manifest whose content does not match the digest asked for, storing nothing', async () => {
    serve(json(manifest), MediaType.OciManifest);
    const wrong = sha256Digest(Buffer.from('something else'));
    await expect(pullImage(client, parseReference(`${host}/evil/app@${wrong}`), (await freshStore()).blobs)).rejects.toThrow(/digest mismatch/);
    await storeIsEmpty();
  });

  it('refuses a tag whose Docker-Content-Digest disagrees with the content', async () => {
    const body = json(manifest);
    handler = (_req, res) => res.writeHead(200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': sha256Digest(Buffer.from('x')) }).end(body);
    await expect(resolveManifest(client, ref())).rejects.toThrow(/digest mismatch \(registry says sha256:/);
  });

  it('refuses a layer with the wrong content and leaves no blob or temp file in the store', async () => {
    const bad = Buffer.from(layer);
    bad[1000] = (bad[1000] ?? 0) ^ 1;
    serve(json(manifest), MediaType.OciManifest, { [layerDesc.digest]: (_q, res) => res.writeHead(200, { 'content-length': bad.length }).end(bad) });
    const err = await pullImage(client, ref(), (await freshStore()).blobs).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY', message: expect.stringMatching(/digest mismatch/) as unknown });
    expect(await store.blobs.has(layerDesc.digest)).toBe(false);
    expect(await store.blobs.has(sha256Digest(json(manifest)))).toBe(false);
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('refuses a manifest listing one layer blob twice under two diff_ids, filling no snapshot', async () => {
    // The blob is fetched and unpacked once, against the first diff_id; the second would name a
    // snapshot (another image's layer) that nothing verified.
    const tar = makeTar([{ name: 'app', data: 'BACKDOORED\n' }]);
    const gz = gzipSync(tar);
    const victim = sha256Digest(makeTar([{ name: 'app', data: 'legit\n' }]));
    const cfg = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(tar), victim] } });
    const gzDesc = { mediaType: MediaType.OciLayerGzip, digest: sha256Digest(gz), size: gz.length };
    const cfgDesc = { mediaType: MediaType.OciConfig, digest: sha256Digest(cfg), size: cfg.length };
    serve(json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfgDesc, layers: [gzDesc, gzDesc] }), MediaType.OciManifest, {
      [gzDesc.digest]: (_q, res) => res.writeHead(200, { 'content-length': gz.length }).end(gz),
      [cfgDesc.digest]: (_q, res) => res.writeHead(200, { 'content-length': cfg.length }).end(cfg),
    });
    const err = await pullIntoStore(await freshStore(), client, ref('dup')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'IMAGE' });
    expect(String(err)).toMatch(/listed twice with different diff_ids/);
    expect(await store.snapshots.has(victim)).toBe(false);
  });

  it('a layer that does not unpack fails naming the image and layer, and the pull takes back what it stored', async () => {
    const good = gzipSync(makeTar([{ name: 'ok', data: 'fine' }]));
    const bad = Buffer.concat([gzipSync(makeTar([{ name: 'x', data: 'y' }])), Buffer.from('trailing garbage')]);
    const descs = [good, bad].map((b) => ({ mediaType: MediaType.OciLayerGzip, digest: sha256Digest(b), size: b.length }));
    const cfg = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256Digest(makeTar([{ name: 'ok', data: 'fine' }])), sha256Digest(makeTar([{ name: 'x', data: 'y' }]))] } });
    const cfgDesc = { mediaType: MediaType.OciConfig, digest: sha256Digest(cfg), size: cfg.length };
    const bodies = new Map([[cfgDesc.digest, cfg], [descs[0]!.digest, good], [descs[1]!.digest, bad]]);
    const blobs = Object.fromEntries([...bodies].map(([d, b]): [string, Handler] => [d, (_q, res) => res.writeHead(200, { 'content-length': b.length }).end(b)]));
    serve(json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: cfgDesc, layers: descs }), MediaType.OciManifest, blobs);
    const err = await pullIntoStore(await freshStore(), client, ref('half')).catch((e: unknown) => e);
    expect(String(err)).toContain(`${host}/evil/app:half: layer ${descs[1]!.digest}: `);
    await storeIsEmpty();
    expect(await readdir(join(store.root, 'snapshots')).catch(() => [])).toEqual([]);
  });

  it('refuses a manifest declaring another size for a layer the store already has', async () => {
    serve(json(manifest), MediaType.OciManifest);
    await pullImage(client, ref(), (await freshStore()).blobs);
    const lying = { ...manifest, layers: [{ ...layerDesc, size: layerDesc.size + 10 }] };
    serve(json(lying), MediaType.OciManifest);
    const err = await pullImage(client, ref('lying'), store.blobs).catch((e: unknown) => e);
    expect(String(err)).toContain(`layer ${layerDesc.digest} is ${layerDesc.size} bytes, but the manifest declares ${layerDesc.size + 10}`);
    expect(await store.blobs.has(sha256Digest(json(lying)))).toBe(false);
  });

  it('stops reading a config that runs past its descriptor size', async () => {
    let sent = 0;
    serve(json(manifest), MediaType.OciManifest, {
      [config.digest]: (_q, res) => {
        // An endless chunked body: keeps writing until the client hangs up.
        res.writeHead(200);
        const more = (): void => {
          while (!res.destroyed && res.write(Buffer.alloc(64 * 1024, 0x20))) sent += 64 * 1024;
          if (!res.destroyed) res.once('drain', more);
        };
        res.on('close', () => res.removeAllListeners('drain'));
        more();
      },
    });
    await expect(pullImage(client, ref(), (await freshStore()).blobs)).rejects.toThrow(new RegExp(`blob evil/app@${config.digest}: too large \\(more than ${config.size} bytes\\)`));
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    await storeIsEmpty();
  });

  it('refuses a config whose descriptor is over the limit without asking for it', async () => {
    const requests: string[] = [];
    const big = { ...manifest, config: { ...config, size: 64 * 1024 * 1024 } };
    const body = json(big);
    handler = (req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(200, { 'content-type': MediaType.OciManifest }).end(body);
    };
    await expect(pullImage(client, ref(), (await freshStore()).blobs)).rejects.toThrow(/too large \(67108864 bytes, limit 16777216\)/);
    expect(requests.filter((u) => u.includes('/blobs/'))).toEqual([]);
  });

  it('refuses a layer body longer than the descriptor (endless body)', async () => {
    serve(json(manifest), MediaType.OciManifest, {
      [layerDesc.digest]: (_q, res) => {
        res.writeHead(200);
        res.write(layer);
        const more = (): void => {
          while (!res.destroyed && res.write(noise(64 * 1024, 9)));
          if (!res.destroyed) res.once('drain', more);
        };
        more();
      },
    });
    await expect(pullImage(client, ref(), (await freshStore()).blobs)).rejects.toThrow(/size mismatch \(more than the 300000 bytes the manifest declares\)/);
    expect(await store.blobs.has(layerDesc.digest)).toBe(false);
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('refuses a Content-Length that disagrees with the descriptor before reading the body', async () => {
    serve(json(manifest), MediaType.OciManifest, {
      [layerDesc.digest]: (_q, res) => res.writeHead(200, { 'content-length': layer.length + 10 }).end(Buffer.concat([layer, Buffer.alloc(10)])),
    });
    await expect(pullImage(client, ref(), (await freshStore()).blobs)).rejects.toThrow(/size mismatch \(registry sends 300010 bytes, manifest declares 300000\)/);
  });

  it('gives up on a stalled layer body with a timeout error instead of hanging', async () => {
    const stalled: ServerResponse[] = [];
    serve(json(manifest), MediaType.OciManifest, {
      [layerDesc.digest]: (_q, res) => {
        res.writeHead(200, { 'content-length': layer.length });
        res.write(layer.subarray(0, 100_000)); // ...and then nothing
        stalled.push(res);
      },
    });
    const err = await pullImage(client, ref(), (await freshStore()).blobs).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY', temporary: true });
    expect((err as Error).message).toMatch(/download failed after 2 attempts: response stalled \(no data for 0\.4s\)/);
    expect(stalled.length).toBe(2);
    for (const r of stalled) r.destroy();
    expect(await store.blobs.has(layerDesc.digest)).toBe(false);
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('gives up on a registry that never answers a manifest request', async () => {
    const hung: ServerResponse[] = [];
    handler = (_req, res) => void hung.push(res);
    const err = await resolveManifest(client, ref()).catch((e: unknown) => e);
    for (const r of hung) r.destroy();
    expect(err).toMatchObject({ code: 'REGISTRY', temporary: true });
    expect((err as Error).message).toMatch(/GET \/v2\/evil\/app\/manifests\/v1 failed: no response within 0\.4s/);
  });
});
