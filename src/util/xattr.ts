/**
 * Extended attributes, never following symlinks (l*xattr semantics), through our fsx addon
 * (native/addon/fsx.c, built at install like the sandbox launcher). Node has no xattr API.
 * Needed for overlay opaque markers (trusted.overlay.opaque) and file capabilities in layers.
 * Was @napi-rs/xattr: its loader's platform probe cost 3.6-7.4 ms per process (require alone),
 * paid by every build that commits a layer; fsx is already loaded by then (0.2 ms).
 */
import { loadFsx, type Fsx } from './native.js';

type XattrFsx = Fsx & Required<Pick<Fsx, 'getXattr' | 'listXattrs' | 'setXattr' | 'removeXattr'>>;

let checked: XattrFsx | undefined;
function xattrOps(): XattrFsx {
  if (checked !== undefined) return checked;
  const fsx = loadFsx();
  if (fsx?.getXattr === undefined || fsx.listXattrs === undefined || fsx.setXattr === undefined || fsx.removeXattr === undefined) {
    throw new Error('extended attributes need dist/native/fsx.node with xattr support: run `npm run build`');
  }
  checked = fsx as XattrFsx;
  return checked;
}

export function getXattr(path: string, name: string): Buffer | undefined {
  return xattrOps().getXattr(path, name) ?? undefined;
}

export function listXattrs(path: string): string[] {
  return xattrOps().listXattrs(path);
}

export function setXattr(path: string, name: string, value: Uint8Array | string): void {
  xattrOps().setXattr(path, name, value);
}

export function removeXattr(path: string, name: string): void {
  xattrOps().removeXattr(path, name);
}

/** Overlay marks a directory whose lower contents are hidden with this xattr set to "y". */
export const OVERLAY_OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'] as const;

export function isOverlayOpaque(path: string): boolean {
  return OVERLAY_OPAQUE_XATTRS.some((name) => getXattr(path, name)?.toString() === 'y');
}
