/**
 * Extended attributes, never following symlinks (l*xattr semantics). Node has no xattr API;
 * @napi-rs/xattr is a prebuilt N-API binding, so installs need no compiler and no install scripts.
 * Needed for overlay opaque markers (trusted.overlay.opaque) and file capabilities in layers.
 */
import { createRequire } from 'node:module';

interface XattrBinding {
  getAttributeSync(path: string, name: string): Buffer | null;
  listAttributesSync(path: string): string[];
  setAttributeSync(path: string, name: string, value: Uint8Array | string): void;
  removeAttributeSync(path: string, name: string): void;
}

// The package is CommonJS with a native loader; createRequire keeps ESM consumers simple. Loaded on
// first use: loading a native addon costs start-up time that a warm (all-cached) build never needs.
let loaded: XattrBinding | undefined;
function binding(): XattrBinding {
  loaded ??= createRequire(import.meta.url)('@napi-rs/xattr') as XattrBinding;
  return loaded;
}

export function getXattr(path: string, name: string): Buffer | undefined {
  return binding().getAttributeSync(path, name) ?? undefined;
}

export function listXattrs(path: string): string[] {
  return binding().listAttributesSync(path);
}

export function setXattr(path: string, name: string, value: Uint8Array | string): void {
  binding().setAttributeSync(path, name, value);
}

export function removeXattr(path: string, name: string): void {
  binding().removeAttributeSync(path, name);
}

/** Overlay marks a directory whose lower contents are hidden with this xattr set to "y". */
export const OVERLAY_OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'] as const;

export function isOverlayOpaque(path: string): boolean {
  return OVERLAY_OPAQUE_XATTRS.some((name) => getXattr(path, name)?.toString() === 'y');
}
