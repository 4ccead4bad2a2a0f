/**
 * `--chown` and WORKDIR ownership: names resolved from /etc/passwd and /etc/group of the
 * destination rootfs, read through the stacked view (symlinks resolve inside the root, so an
 * image cannot make us read a host file). Unknown names resolve to 0, as BuildKit does.
 */
import { readFile } from 'node:fs/promises';
import { TsbuildError } from '../util/errors.js';
import type { RootfsView } from './rootfs.js';

const MAX_ID = 0xfffffffe;

async function readInRoot(view: RootfsView, path: string): Promise<string[][]> {
  const { entry } = await view.resolve(path, true);
  if (entry === undefined || !entry.stat.isFile() || entry.stat.size > 16 << 20) return [];
  const text = await readFile(entry.hostPath, 'utf8');
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'));
}

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  if (n > MAX_ID) throw new TsbuildError('DOCKERFILE', `uid/gid ${text} is out of range (max ${MAX_ID})`);
  return n;
}

export async function resolveChown(view: RootfsView, spec: string): Promise<{ uid: number; gid: number }> {
  const [userPart = '', groupPart] = spec.split(/:(.*)/s);
  let uid = parseId(userPart);
  let gid: number | undefined;
  if (uid === undefined) {
    const row = (await readInRoot(view, '/etc/passwd')).find((r) => r[0] === userPart);
    uid = row !== undefined ? (parseId(row[2] ?? '') ?? 0) : 0;
    gid = row !== undefined ? (parseId(row[3] ?? '') ?? 0) : 0;
  } else {
    gid = uid;
  }
  if (groupPart !== undefined && groupPart !== '') {
    const numeric = parseId(groupPart);
    if (numeric !== undefined) gid = numeric;
    else {
      const row = (await readInRoot(view, '/etc/group')).find((r) => r[0] === groupPart);
      gid = row !== undefined ? (parseId(row[2] ?? '') ?? 0) : 0;
    }
  }
  return { uid, gid };
}
