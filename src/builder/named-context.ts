/**
 * Named build contexts, as `docker buildx build --build-context NAME=VALUE` has them. VALUE is
 * `docker-image://REF` (that image stands in for NAME), `oci-layout://DIR[:TAG][@DIGEST]` (an image in
 * an OCI layout on disk, oci-layout.ts) or a local directory (its files, filtered by its own
 * .dockerignore, form a FROM-scratch rootfs). Where NAME is looked up, BuildKit's order:
 * a stage of that name is replaced whole (its instructions never run); a FROM that names no earlier
 * stage, and a COPY --from / RUN --mount from= that names no stage, take the context before any image.
 * Names match as BuildKit matches them: the familiar reference without `:latest`, so `alpine`,
 * `library/alpine` and `docker.io/library/alpine:latest` are one name.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseReference } from '../image/index.js';
import { TsbuildError } from '../util/errors.js';
import { parseOciLayoutSource, type OciLayoutSource } from './oci-layout.js';

export type NamedContext =
  | { kind: 'image'; ref: string; name: string }
  | { kind: 'local'; dir: string; name: string }
  | { kind: 'oci-layout'; layout: OciLayoutSource; name: string };

/** The lookup key of a context or stage name, or undefined when it is no valid name. */
export function contextKey(name: string): string | undefined {
  try {
    const familiar = parseReference(name).familiar();
    return familiar.endsWith(':latest') ? familiar.slice(0, -':latest'.length) : familiar;
  } catch {
    return undefined;
  }
}

/** The context `name` (a stage, FROM or --from name) stands for, if any. */
export function findNamedContext(contexts: ReadonlyMap<string, NamedContext>, name: string): NamedContext | undefined {
  const key = contextKey(name);
  return key === undefined ? undefined : contexts.get(key);
}

/** `--build-context` values, keyed by contextKey(NAME). Relative directories are taken from `cwd`. */
export function parseNamedContexts(specs: string[], cwd: string): Map<string, NamedContext> {
  const out = new Map<string, NamedContext>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = eq < 0 ? '' : spec.slice(0, eq);
    const value = eq < 0 ? '' : spec.slice(eq + 1);
    if (name === '' || value === '') throw new TsbuildError('USAGE', `--build-context needs NAME=VALUE: ${spec}`);
    const key = contextKey(name);
    if (key === undefined) throw new TsbuildError('USAGE', `--build-context ${spec}: invalid context name ${JSON.stringify(name)}`);
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      try {
        parseReference(ref);
      } catch (err) {
        throw new TsbuildError('USAGE', `--build-context ${spec}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      out.set(key, { kind: 'image', ref, name });
      continue;
    }
    if (value.startsWith('oci-layout://')) {
      const layout = parseOciLayoutSource(value.slice('oci-layout://'.length));
      const dir = resolve(cwd, layout.dir);
      if (statSync(join(dir, 'index.json'), { throwIfNoEntry: false })?.isFile() !== true) {
        throw new TsbuildError('USAGE', `--build-context ${spec}: ${dir} is not an OCI image layout (no index.json)`);
      }
      out.set(key, { kind: 'oci-layout', layout: { ...layout, dir }, name });
      continue;
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || value.startsWith('target:')) {
      throw new TsbuildError('USAGE', `--build-context ${spec}: unsupported source (docker-image://REF, oci-layout://DIR[:TAG][@DIGEST] or a local directory; URLs and git are not supported)`);
    }
    const dir = resolve(cwd, value);
    if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) {
      throw new TsbuildError('USAGE', `--build-context ${spec}: ${dir} is not a directory`);
    }
    out.set(key, { kind: 'local', dir, name });
  }
  return out;
}
