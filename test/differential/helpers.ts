/**
 * Shared by the differential suite and the COPY/ADD tests: flatten an image into a plain dir
 * (its layers applied in order with layers' own extractor) and describe a tree as comparable
 * lines (path, type, mode, uid:gid, content digest, link target, device; never mtime).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest, ImageConfig, Manifest } from '../../src/image/index.js';
import { extractLayer } from '../../src/layers/index.js';
import type { Store } from '../../src/store/index.js';

export interface TreeNode {
  type: string;
  mode: string;
  owner: string;
  /** sha256 prefix of a file's content, a link target, or a device number. */
  data: string;
  /** Hard-link group: the first path seen with this inode (files only, nlink > 1). */
  linkGroup?: string;
}

/** Applies the image's layers (tsbuild store) into `dir`; returns its config. */
export async function flattenImage(store: Store, manifestDigest: string, dir: string): Promise<ImageConfig> {
  const manifest = await store.blobs.readJson<Manifest>(manifestDigest as Digest);
  for (const layer of manifest.layers) await extractLayer(await store.blobs.open(layer.digest), dir, { mode: 'apply' });
  return store.blobs.readJson<ImageConfig>(manifest.config.digest);
}

/** Applies an OCI layout's image (e.g. `buildah push IMG oci:DIR`) into `dir`; returns its config. */
export async function flattenOciLayout(layout: string, dir: string): Promise<ImageConfig> {
  const blob = (d: string): string => join(layout, 'blobs', ...d.split(':'));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const first = index.manifests[0];
  if (first === undefined) throw new Error(`${layout}: empty index`);
  const manifest = JSON.parse(await readFile(blob(first.digest), 'utf8')) as Manifest;
  for (const layer of manifest.layers) await extractLayer(createReadStream(blob(layer.digest)), dir, { mode: 'apply' });
  return JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as ImageConfig;
}

const TYPES: [string, (s: Awaited<ReturnType<typeof lstat>>) => boolean][] = [
  ['dir', (s) => s.isDirectory()], ['file', (s) => s.isFile()], ['symlink', (s) => s.isSymbolicLink()],
  ['fifo', (s) => s.isFIFO()], ['char', (s) => s.isCharacterDevice()], ['block', (s) => s.isBlockDevice()],
];

/** Every node below `root` (the root excluded), keyed by `/path`. */
export async function describeTree(root: string): Promise<Map<string, TreeNode>> {
  const out = new Map<string, TreeNode>();
  const inodes = new Map<number, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = `${rel}/${name}`;
      const host = join(root, path);
      const st = await lstat(host);
      const type = TYPES.find(([, test]) => test(st))?.[0] ?? 'socket';
      let data = '';
      if (type === 'file') data = createHash('sha256').update(await readFile(host)).digest('hex').slice(0, 16);
      else if (type === 'symlink') data = await readlink(host);
      else if (type === 'char' || type === 'block') data = String(st.rdev);
      const node: TreeNode = { type, mode: (st.mode & 0o7777).toString(8), owner: `${st.uid}:${st.gid}`, data };
      if (type === 'file' && st.nlink > 1) {
        const first = inodes.get(st.ino);
        if (first === undefined) inodes.set(st.ino, path);
        node.linkGroup = first ?? path;
      }
      out.set(path, node);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  return out;
}

export function nodeLine(path: string, n: TreeNode | undefined): string {
  if (n === undefined) return `${path} (missing)`;
  return `${path} ${n.type} ${n.mode} ${n.owner} ${n.data}${n.linkGroup !== undefined ? ` link=${n.linkGroup}` : ''}`;
}
