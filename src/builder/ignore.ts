import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { resolveInRoot } from '../layers/rootpath.js';
import { createIgnoreMatcher, findDockerignore, parseDockerignore, type IgnoreMatcher } from '../parser/index.js';
import { errnoCode, TsbuildError } from '../util/errors.js';

/** `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`. */
export async function loadIgnore(dockerfilePath: string, contextDir: string, signal?: AbortSignal): Promise<IgnoreMatcher | undefined> {
  const file = await findDockerignore(dockerfilePath, contextDir, signal !== undefined ? { signal } : {});
  if (file === undefined) return undefined;
  return createIgnoreMatcher(parseDockerignore(await readFile(withinOwnDir(file), 'utf8')));
}

/**
 * `file` with a symlink in its last component resolved inside the file's own directory, as
 * BuildKit reads a Dockerfile or .dockerignore through a local source rooted there: a context
 * (a cloned repository, a tar from stdin) whose Dockerfile links to /etc/shadow must not have
 * tsbuild read, and print, a host file.
 */
export function withinOwnDir(file: string): string {
  const dir = dirname(file);
  const path = join(dir, ...resolveInRoot(dir, [basename(file)], true));
  // A FIFO or a device would hang the read or never end it (a Dockerfile linked to /dev/zero).
  const st = statSync(path, { throwIfNoEntry: false });
  if (st !== undefined && !st.isFile()) throw new TsbuildError('CONTEXT', `${file} is not a regular file`);
  return path;
}

/** A named build context's own `.dockerignore` (there is no Dockerfile beside it). */
export async function loadContextIgnore(dir: string): Promise<IgnoreMatcher | undefined> {
  const text = await readFile(withinOwnDir(join(dir, '.dockerignore')), 'utf8').catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : createIgnoreMatcher(parseDockerignore(text));
}
