/**
 * pullIntoStore (src/api/pull.ts): layers unpack from the download stream itself; a snapshot is
 * claimed only for a verified blob whose content hashes to the config's diffID.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { pullIntoStore } from '../../src/api/pull.js';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/mediatypes.js';
import { parseReference } from '../../src/image/reference.js';
import { RegistryClient, StaticAuth } from '../../src/registry/index.js';
import { Branch } from '../../src/registry/branch.js';
import { openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../services/index.js';
import { noise } from './fixture.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

/** A gzipped one-directory layer with a big incompressible file (many chunks on the wire) and a small one. */
async function layer(seed: number): Promise<{ gz: Buffer; diffId: Digest; big: Buffer }> {
  const big = noise(3 * 1024 * 1024 + 17, seed);
  const p = pack();
  p.entry({ name: `d${seed}/`, type: 'directory', mode: 0o755 });
  p.entry({ name: `d${seed}/big`, mode: 0o644 }, big);
  p.entry({ name: `d${seed}/small`, mode: 0o600 }, `layer ${seed}\n`);
  p.finalize();
  const parts: Buffer[] = [];
  for await (const c of p) parts.push(c as Buffer);
  const tar = Buffer.concat(parts);
  return { gz: gzipSync(tar), diffId: sha256Digest(tar), big };
}

function image(layers: { gz: Buffer; diffId: Digest }[], diffIds = layers.map((l) => l.diffId)) {
  const configBytes = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds } });
  const config = { mediaType: MediaType.OciConfig, digest: sha256Digest(configBytes), size: configBytes.length };
  const descs = layers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: sha256Digest(l.gz), size: l.gz.length }));
  const manifest = json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: descs });
  const blobs = new Map<string, Buffer>([[config.digest, configBytes], ...layers.map((l, i) => [descs[i]?.digest ?? '', l.gz] as const)]);
  return { manifest, blobs, descs };
}

describe('pullIntoStore', () => {
  let server: Server;
  let host: string;
  let handler: Handler = (_q, res) => res.writeHead(404).end();
  let dir: string;
  let client: RegistryClient;
  let one: Awaited<ReturnType<typeof layer>>;
  let two: Awaited<ReturnType<typeof layer>>;

  /** Serves `manifest` and the blobs; `override` replaces one blob's body as sent. */
  const serve = (img: ReturnType<typeof image>, override: Record<string, Buffer> = {}): void => {
    handler = (req, res) => {
      const path = req.url ?? '';
      if (path.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': MediaType.OciManifest, 'content-length': img.manifest.length }).end(img.manifest);
        return;
      }
      const digest = path.slice(path.lastIndexOf('/') + 1);
      const body = override[digest] ?? img.blobs.get(digest);
      if (body === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    };
  };
  const fresh = (name: string): Promise<Store> => openStore(join(dir, name));
  const ref = parseReference;

  beforeAll(async () => {
    [one, two] = [await layer(1), await layer(2)];
    server = createServer((req, res) => (req.url === '/v2/' ? res.writeHead(200).end('{}') : handler(req, res)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    dir = await tempDir('pull-unpack');
    client = new RegistryClient({ auth: new StaticAuth({}), registriesConf: false, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 } });
  });
  afterEach(async () => {
    for (const name of await readdir(dir)) await removeDir(join(dir, name));
  });
  afterAll(async () => {
    await client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await removeDir(dir);
  });

  it('unpacks every layer into its snapshot, stores the blobs once and tags the image', async () => {
    const img = image([one, two]);
    serve(img);
    const store = await fresh('ok');
    const r = await pullIntoStore(store, client, ref(`${host}/app/x:v1`));
    expect(r.manifestDigest).toBe(sha256Digest(img.manifest));
    for (const [l, seed] of [[one, 1], [two, 2]] as const) {
      const snap = store.snapshots.path(l.diffId);
      expect(await store.snapshots.has(l.diffId)).toBe(true);
      expect((await readFile(join(snap, `d${seed}`, 'big'))).equals(l.big)).toBe(true);
      expect(await readFile(join(snap, `d${seed}`, 'small'), 'utf8')).toBe(`layer ${seed}\n`);
    }
    for (const d of img.descs) expect(await store.blobs.has(d.digest)).toBe(true);
    expect((await store.tags.get(`${host}/app/x:v1`))?.digest).toBe(r.manifestDigest);
    expect(await readdir(store.tmpDir)).toEqual([]);
    // Pulling again finds everything and changes nothing.
    await pullIntoStore(store, client, ref(`${host}/app/x:v1`));
    expect((await store.snapshots.list()).sort()).toEqual([one.diffId, two.diffId].sort());
  });

  it('unpacks from the stored blob when the blob is already there but its snapshot is not', async () => {
    const img = image([one]);
    serve(img);
    const store = await fresh('blob-only');
    await store.blobs.putBytes(one.gz);
    await pullIntoStore(store, client, ref(`${host}/app/x:v1`));
    expect(await readFile(join(store.snapshots.path(one.diffId), 'd1', 'small'), 'utf8')).toBe('layer 1\n');
  });

  it('refuses a corrupted layer: no blob, no snapshot, no temp file, no tag', async () => {
    const img = image([one, two]);
    const bad = Buffer.from(two.gz);
    bad[bad.length - 5] = (bad[bad.length - 5] ?? 0) ^ 1; // the gzip trailer: the tar itself reads fine
    const badDigest = sha256Digest(two.gz);
    serve(img, { [badDigest]: bad });
    const store = await fresh('corrupt');
    const err = await pullIntoStore(store, client, ref(`${host}/app/x:v1`)).catch((e: unknown) => e);
    expect(err).toMatchObject({ message: expect.stringMatching(/digest mismatch|crc|check/i) as unknown });
    expect(await store.blobs.has(badDigest)).toBe(false);
    expect(await store.snapshots.has(two.diffId)).toBe(false);
    expect(await store.blobs.has(sha256Digest(img.manifest))).toBe(false);
    expect(await store.tags.get(`${host}/app/x:v1`)).toBeUndefined();
    expect(await readdir(store.tmpDir), String(err)).toEqual([]);
  });

  it('restarts a layer whose connection drops mid-body, and unpacks it from the stored blob', async () => {
    const img = image([one, two]);
    serve(img);
    const serveAll = handler;
    const cut = sha256Digest(two.gz);
    let drops = 0;
    handler = (req, res) => {
      if ((req.url ?? '').endsWith(cut) && drops++ === 0) {
        res.writeHead(200, { 'content-length': two.gz.length });
        res.write(two.gz.subarray(0, 1024 * 1024), () => res.destroy()); // half a layer, then the socket dies
        return;
      }
      serveAll(req, res);
    };
    const store = await fresh('drop');
    await pullIntoStore(store, client, ref(`${host}/app/x:v1`));
    expect(drops).toBe(2);
    expect((await readFile(join(store.snapshots.path(two.diffId), 'd2', 'big'))).equals(two.big)).toBe(true);
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('leaves nothing behind when aborted mid-download', async () => {
    const img = image([one, two]);
    serve(img);
    const serveAll = handler;
    const controller = new AbortController();
    handler = (req, res) => {
      if ((req.url ?? '').endsWith(sha256Digest(two.gz))) {
        res.writeHead(200, { 'content-length': two.gz.length });
        res.write(two.gz.subarray(0, 1024 * 1024), () => controller.abort(new Error('stop'))); // and never ends
        return;
      }
      serveAll(req, res);
    };
    const store = await fresh('abort');
    await expect(pullIntoStore(store, client, ref(`${host}/app/x:v1`), { signal: controller.signal })).rejects.toThrow();
    expect(await store.snapshots.has(two.diffId)).toBe(false);
    expect(await store.blobs.has(sha256Digest(two.gz))).toBe(false);
    expect(await store.tags.get(`${host}/app/x:v1`)).toBeUndefined();
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('refuses a layer whose content does not hash to the diffID the config names', async () => {
    const img = image([one], [two.diffId]);
    serve(img);
    const store = await fresh('diffid');
    await expect(pullIntoStore(store, client, ref(`${host}/app/x:v1`))).rejects.toThrow(/unpacks to .* but the config says/);
    expect(await store.snapshots.list()).toEqual([]);
    expect(await store.tags.get(`${host}/app/x:v1`)).toBeUndefined();
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('refuses a config whose diff_ids do not match the layer count', async () => {
    serve(image([one, two], [one.diffId]));
    const store = await fresh('count');
    await expect(pullIntoStore(store, client, ref(`${host}/app/x:v1`))).rejects.toThrow(/2 layers but 1 diff_ids/);
  });
});

describe('Branch', () => {
  it('hands every chunk to its reader in order, then ends', async () => {
    const b = new Branch(2);
    const got: string[] = [];
    const reading = (async () => {
      for await (const c of b) got.push(c.toString());
    })();
    for (const s of ['a', 'b', 'c', 'd', 'e']) await b.push(Buffer.from(s));
    b.end();
    await reading;
    expect(got).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('stops holding the producer back once its reader is gone', async () => {
    const b = new Branch(2);
    await b.push(Buffer.from('x'));
    for await (const c of b) {
      expect(c.toString()).toBe('x');
      break;
    }
    for (let i = 0; i < 10; i++) await b.push(Buffer.from('y')); // would block forever if still queued
  });

  it('throws the reader’s error to the producer, and the producer’s to the reader', async () => {
    const b = new Branch(2);
    b.close(new Error('unpack failed'));
    await expect(b.push(Buffer.from('z'))).rejects.toThrow('unpack failed');
    const c = new Branch(2);
    const read = (async () => {
      for await (const _ of c) void _;
    })();
    c.fail(new Error('download failed'));
    await expect(read).rejects.toThrow('download failed');
  });
});
