/**
 * The context walk's lstat record: plain numbers, no BigInt. A 30,000-file context used to carry
 * 30,000 BigIntStats (a dozen BigInts each), which was most of a warm build's garbage collection.
 * Timestamps are kept as exact seconds + nanoseconds, so the stat identity still sees a same-size
 * edit made within the same millisecond. Directories are listed with one native call each
 * (fsx lstatDir: readdir + fstatat), or with readdirSync/lstatSync when the addon is not built.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from './errors.js';
import { loadFsx } from './native.js';

const S_IFMT = 0o170000;
const TWO_32 = 2 ** 32;
/** High halves below this make a 64-bit value that a double holds exactly (< 2^53). */
const EXACT_HI = 2 ** 21;

export class FileStat {
  #identity: string | undefined;

  constructor(
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly nlink: number,
    /** Exact below 2^53 (8 PiB); the identity does not need more (any resize also changes ctime). */
    readonly size: number,
    readonly rdev: number,
    /** Exact: a bigint only beyond 2^53 (64-bit inode numbers, e.g. overlayfs xino). */
    readonly dev: number | bigint,
    readonly ino: number | bigint,
    readonly mtimeSec: number,
    readonly mtimeNsec: number,
    readonly ctimeSec: number,
    readonly ctimeNsec: number,
  ) {}

  static fromBigInt(s: BigIntStats): FileStat {
    const num = (v: bigint): number | bigint => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
    const [ms, mn] = secNsec(s.mtimeNs);
    const [cs, cn] = secNsec(s.ctimeNs);
    return new FileStat(Number(s.mode), Number(s.uid), Number(s.gid), Number(s.nlink), Number(s.size), Number(s.rdev), num(s.dev), num(s.ino), ms, mn, cs, cn);
  }

  isDirectory(): boolean {
    return (this.mode & S_IFMT) === 0o040000;
  }

  isFile(): boolean {
    return (this.mode & S_IFMT) === 0o100000;
  }

  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === 0o120000;
  }

  isFIFO(): boolean {
    return (this.mode & S_IFMT) === 0o010000;
  }

  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === 0o020000;
  }

  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === 0o060000;
  }

  isSocket(): boolean {
    return (this.mode & S_IFMT) === 0o140000;
  }

  /** Whole milliseconds, as BigIntStats' mtimeMs (what a copy's mtime has always been set from). */
  get mtimeMs(): number {
    return this.mtimeSec * 1000 + Math.floor(this.mtimeNsec / 1e6);
  }

  /**
   * dev:ino:size:mtimeNs:ctimeNs. Unchanged means the same inode with the same content and
   * metadata. The text is the one BigIntStats gave, so memos and COPY records stay valid.
   */
  get identity(): string {
    // Kept: a file's is asked for twice (memo lookup, COPY reuse record).
    this.#identity ??= `${this.dev}:${this.ino}:${this.size}:${nsKey(this.mtimeSec, this.mtimeNsec)}:${nsKey(this.ctimeSec, this.ctimeNsec)}`;
    return this.#identity;
  }
}

function secNsec(ns: bigint): [number, number] {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return [Number(sec), Number(nsec)];
}

/** The decimal of sec * 10^9 + nsec, exactly (it is beyond 2^53), without a BigInt in the usual case. */
function nsKey(sec: number, nsec: number): string {
  if (sec > 0) return nsec >= 1e8 ? `${sec}${nsec}` : `${sec}${String(nsec).padStart(9, '0')}`;
  return String(BigInt(sec) * 1_000_000_000n + BigInt(nsec));
}

function u64(hi: number, lo: number): number | bigint {
  return hi < EXACT_HI ? hi * TWO_32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
}

/** One directory: names in `Array.prototype.sort()` order, with their lstat. */
export interface Listing {
  names: string[];
  stats: FileStat[];
}

/** Layout of fsx lstatDir's Float64Array (native/addon/fsx.c). */
const F = { MODE: 0, UID: 1, GID: 2, NLINK: 3, SIZE: 4, DEV: 6, INO: 8, RDEV: 10, MTIME: 12, CTIME: 14, FIELDS: 16 } as const;
/** Names whose UTF-16 order may differ from byte order, or that were not valid UTF-8 (U+FFFD). */
const NOT_BYTE_ORDER = /[\ud800-\uffff]/;

/** Lists a directory with the native addon; undefined when it is not built or the names need JS's own order. */
export function listDirNative(path: string): Listing | undefined {
  const fsx = loadFsx();
  // The addon takes paths up to 4 KiB; Node reports what is longer (ENAMETOOLONG) its own way.
  if (fsx?.lstatDir === undefined || path.length > 1000 && Buffer.byteLength(path) >= 4095) return undefined;
  const [joined, v] = fsx.lstatDir(path);
  if (joined === '') return { names: [], stats: [] };
  if (NOT_BYTE_ORDER.test(joined)) return undefined;
  const names = joined.split('/');
  const stats = new Array<FileStat>(names.length);
  for (let i = 0, o = 0; i < names.length; i++, o += F.FIELDS) {
    stats[i] = new FileStat(
      v[o + F.MODE] as number, v[o + F.UID] as number, v[o + F.GID] as number, v[o + F.NLINK] as number,
      Number(u64(v[o + F.SIZE] as number, v[o + F.SIZE + 1] as number)), Number(u64(v[o + F.RDEV] as number, v[o + F.RDEV + 1] as number)),
      u64(v[o + F.DEV] as number, v[o + F.DEV + 1] as number), u64(v[o + F.INO] as number, v[o + F.INO + 1] as number),
      v[o + F.MTIME] as number, v[o + F.MTIME + 1] as number, v[o + F.CTIME] as number, v[o + F.CTIME + 1] as number,
    );
  }
  return { names, stats };
}

/** The same listing from Node's own calls (one lstat per entry). */
export function listDirNode(path: string): Listing {
  const names = readdirSync(path).sort();
  return { names, stats: names.map((name) => FileStat.fromBigInt(lstatSync(join(path, name), { bigint: true }))) };
}

export function listDir(path: string): Listing {
  return listDirNative(path) ?? listDirNode(path);
}

/** One path's lstat as a FileStat (a single lookup: Node's call is as good as the addon's). */
export async function lstatFile(path: string): Promise<FileStat> {
  return FileStat.fromBigInt(await lstat(path, { bigint: true }));
}

/** `lstatFile` without a promise; undefined when nothing is there (ENOENT, or ENOTDIR on the way). */
export function lstatFileSync(path: string): FileStat | undefined {
  try {
    const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return st === undefined ? undefined : FileStat.fromBigInt(st);
  } catch (err) {
    if (errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}
