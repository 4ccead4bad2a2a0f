/**
 * Where the compiled native helpers live (dist/native/, built by scripts/build-native.mjs), seen
 * from wherever this module runs: the compiled tree (dist/src/util → dist/native), the TS sources
 * under vitest (src/util → dist/native), the single-file bundle (dist/tsbuild.mjs → dist/native),
 * or a checkout's working directory.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function nativeDirs(): string[] {
  return [
    fileURLToPath(new URL('../../native/', import.meta.url)),
    fileURLToPath(new URL('../../dist/native/', import.meta.url)),
    fileURLToPath(new URL('./native/', import.meta.url)),
    join(process.cwd(), 'dist/native/'),
  ];
}

/** The fsx addon (flock, mknod, lstatDir, xattrs), or undefined when it was not built: callers fall back to spawning flock(1)/mknod(1) or to Node's fs; xattrs have no fallback (util/xattr.ts). */
export interface Fsx {
  /** Non-blocking: true when taken, false when another open file description holds it. */
  flock(fd: number, exclusive: boolean): boolean;
  mknod(path: string, mode: number, major: number, minor: number): void;
  /**
   * A directory's entries in byte order joined by '/', and their lstat as 16 numbers each (layout in
   * native/addon/fsx.c). Optional: an addon built before it existed lacks it.
   */
  lstatDir?(path: string): [string, Float64Array];
  /** Sets FS_TOPDIR_FL (chattr +T) on a directory; false when its file system has no inode flags. Optional, as lstatDir. */
  markTopDir?(path: string): boolean;
  /** l*xattr(2): a symlink's own attributes. null: no such attribute. Optional, as lstatDir. */
  getXattr?(path: string, name: string): Buffer | null;
  /** Empty where the file system has no extended attributes. */
  listXattrs?(path: string): string[];
  setXattr?(path: string, name: string, value: Uint8Array | string): void;
  removeXattr?(path: string, name: string): void;
}

let fsx: Fsx | null | undefined;

export function loadFsx(): Fsx | undefined {
  if (fsx === undefined) {
    const path = nativeDirs().map((d) => join(d, 'fsx.node')).find((p) => existsSync(p));
    fsx = path === undefined ? null : (createRequire(import.meta.url)(path) as Fsx);
  }
  return fsx ?? undefined;
}
