/** Test helpers: temp dirs, a small filesystem builder, tar and tree listings. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { readTar } from '../../src/layers/tar/reader.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor, type TarHeader } from '../../src/layers/tar/header.js';
import { listXattrs, getXattr } from '../../src/util/xattr.js';

export function tempDir(prefix = 'tsbuild-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function cleanup(...dirs: string[]): void {
  for (const d of dirs) {
    try {
      execFileSync('umount', ['-R', d], { stdio: 'ignore' });
    } catch {
      // not a mount point
    }
    rmSync(d, { recursive: true, force: true });
  }
}

export type Spec =
  | string // file content
  | { dir: true; mode?: number }
  | { file: string; mode?: number; uid?: number; gid?: number }
  | { symlink: string }
  | { fifo: true }
  | { char: [number, number] };

/** Builds a tree: keys are relative paths (parents created), in insertion order. */
export function makeTree(root: string, spec: Record<string, Spec>): void {
  mkdirSync(root, { recursive: true });
  for (const [rel, s] of Object.entries(spec)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof s === 'string') writeFileSync(p, s);
    else if ('dir' in s) {
      mkdirSync(p, { recursive: true });
      if (s.mode !== undefined) chmodSync(p, s.mode);
    } else if ('file' in s) {
      writeFileSync(p, s.file);
      if (s.mode !== undefined) chmodSync(p, s.mode);
      if (s.uid !== undefined) execFileSync('chown', [`${s.uid}:${s.gid ?? s.uid}`, p]);
    } else if ('symlink' in s) symlinkSync(s.symlink, p);
    else if ('fifo' in s) execFileSync('mknod', [p, 'p']);
    else execFileSync('mknod', [p, 'c', String(s.char[0]), String(s.char[1])]);
  }
}

export async function collect(stream: NodeJS.ReadableStream | AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** One line per tar entry: type name mode uid:gid [size|-> link|dev] [xattrs]. */
export async function listTar(tar: Buffer): Promise<string[]> {
  const out: string[] = [];
  for await (const { header: h, body } of readTar(Readable.from([tar]))) {
    const data = await collect(body);
    let line = `${h.type} ${h.name} ${h.mode.toString(8)} ${h.uid}:${h.gid}`;
    if (h.type === 'file') line += ` ${data.toString('utf8').slice(0, 20)}`;
    if (h.type === 'symlink' || h.type === 'link') line += ` -> ${h.linkname}`;
    if (h.type === 'char' || h.type === 'block') line += ` ${h.devmajor},${h.devminor}`;
    for (const [k, v] of h.xattrs) line += ` ${k}=${v.toString('hex')}`;
    out.push(line);
  }
  return out;
}

/** A canonical description of a tree for comparisons (no times). */
export function describeTree(root: string, opts: { xattrs?: boolean } = {}): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(root, r);
      const st = lstatSync(p);
      let line = `${r} ${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
      if (st.isFile()) line += ` ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 12)}`;
      if (st.isSymbolicLink()) line += ` -> ${readlinkSync(p)}`;
      if (st.isCharacterDevice() || st.isBlockDevice()) line += ` rdev=${st.rdev}`;
      if (opts.xattrs !== false) for (const x of listXattrs(p).sort()) line += ` ${x}=${getXattr(p, x)?.toString('hex')}`;
      out.push(line);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

export interface RawEntry {
  name: string;
  type?: TarHeader['type'];
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
  dev?: [number, number];
  xattrs?: Record<string, string>;
  /** Declared size when it should differ from the data (truncated/hostile tars). */
  size?: number;
}

/** A hand-made (possibly hostile) tar. */
export function makeTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '');
    const type = e.type ?? 'file';
    parts.push(
      encodeHeader({
        name: e.name,
        type,
        mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
        uid: 0,
        gid: 0,
        size: e.size ?? (type === 'file' ? data.length : 0),
        mtime: 1_600_000_000,
        linkname: e.linkname ?? '',
        devmajor: e.dev?.[0] ?? 0,
        devminor: e.dev?.[1] ?? 0,
        xattrs: new Map(Object.entries(e.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
      }),
    );
    if (type === 'file') parts.push(data, paddingFor(data.length));
  }
  if (entries.some((e) => e.size !== undefined)) return Buffer.concat(parts); // deliberately truncated
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export function mountOverlay(lower: string[], upper: string, work: string, merged: string): void {
  mkdirSync(merged, { recursive: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(upper, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`, merged]);
}

export function umount(dir: string): void {
  execFileSync('umount', [dir]);
}
