/**
 * Differential tests: the same Dockerfile built by tsbuild and by buildah from the same busybox
 * base (built by tsbuild, pushed to a local registry, pulled by both). The final rootfs trees
 * are compared node by node (path, type, mode, uid:gid, content digest, link target, device,
 * hard-link groups; never mtime) and so are the config fields a Dockerfile sets.
 *
 * Where buildah differs from BuildKit, tsbuild follows BuildKit and the case lists the
 * difference as an explicit allowance with its reason.
 */
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/execute.js';
import { MediaType, type ImageConfig, type Manifest } from '../../src/image/index.js';
import { parseReference } from '../../src/image/reference.js';
import { compressLayer } from '../../src/layers/index.js';
import { pushImage, RegistryClient } from '../../src/registry/index.js';
import type { Store } from '../../src/store/index.js';
import { buildBusybox, makeContext, newStore, tempDir } from '../builder/helpers.js';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { Buildah } from './buildah.js';
import { CASES, type Case } from './cases.js';
import { describeTree, flattenImage, nodeLine } from './helpers.js';

let registry: RunningRegistry;
let store: Store;
let client: RegistryClient;
let buildah: Buildah;
let base = '';
let http: Server;
let httpBase = '';
const dirs: string[] = [];

beforeAll(async () => {
  registry = await startRegistry({ mode: 'open' });
  const s = await newStore();
  store = s.store;
  dirs.push(s.root);
  const bb = await buildBusybox(store);
  const layers = await Promise.all(bb.manifest.layers.map((l) => compressLayer(store, l.digest, { format: 'gzip' })));
  const manifest: Manifest = { ...bb.manifest, layers };
  base = `${registry.host}/tsbuild/busybox:local`;
  client = new RegistryClient({});
  await pushImage(client, store.blobs, parseReference(base), { manifestBytes: Buffer.from(JSON.stringify(manifest)), manifestMediaType: MediaType.OciManifest, manifest });
  http = createServer((req, res) => {
    if (req.url === '/files/remote.txt') res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end('remote\n');
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const addr = http.address();
  httpBase = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
  const work = await tempDir('buildah');
  dirs.push(work);
  buildah = new Buildah(work);
});

afterAll(async () => {
  await buildah.cleanup();
  await registry.stop();
  await new Promise((resolve) => http.close(resolve));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck'] as const;

function configView(c: ImageConfig['config'], allow: Case['configAllow']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of CONFIG_FIELDS) {
    const v = (c as Record<string, unknown> | undefined)?.[f];
    // Absent, null and empty are the same to a runtime.
    const empty = v === undefined || v === null || v === '' || (typeof v === 'object' && Object.keys(v).length === 0);
    if (!empty && allow?.[f] !== true) out[f] = v;
  }
  // buildah stamps its own version label on every image; not a Dockerfile-visible difference.
  if (out.Labels !== undefined) {
    const { 'io.buildah.version': _version, ...rest } = out.Labels as Record<string, string>;
    if (Object.keys(rest).length > 0) out.Labels = rest;
    else delete out.Labels;
  }
  return out;
}

async function runCase(c: Case): Promise<{ diffs: string[]; ours: Record<string, unknown>; theirs: Record<string, unknown> }> {
  const ctx = await makeContext({ Dockerfile: c.dockerfile.replaceAll('$BASE', base).replaceAll('$HTTP', httpBase), ...c.files });
  dirs.push(ctx);
  await c.prepare?.(ctx);
  const mine = join(ctx, '..', `${ctx.split('/').pop() ?? ''}-tsbuild`);
  const theirs = join(ctx, '..', `${ctx.split('/').pop() ?? ''}-buildah`);
  dirs.push(mine, theirs);
  const result = await build({ contextDir: ctx }, { store, registry: client });
  const ourConfig = await flattenImage(store, result.manifestDigest, mine);
  const theirConfig = await buildah.build(ctx, theirs);
  const a = await describeTree(mine);
  const b = await describeTree(theirs);
  const diffs: string[] = [];
  for (const path of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = nodeLine(path, a.get(path));
    const y = nodeLine(path, b.get(path));
    if (x === y) continue;
    if (c.allow?.(path, a.get(path), b.get(path)) === true) continue;
    diffs.push(`tsbuild: ${x}\nbuildah: ${y}`);
  }
  return { diffs, ours: configView(ourConfig.config, c.configAllow), theirs: configView(theirConfig, c.configAllow) };
}

describe('tsbuild and buildah produce the same rootfs and config', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const r = await runCase(c);
      expect(r.diffs).toEqual([]);
      expect(r.ours).toEqual(r.theirs);
    });
  }
});
