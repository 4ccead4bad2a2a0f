import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createIgnoreMatcher, findDockerignore, parseDockerignore, type IgnoreMatcher } from '../parser/index.js';
import { errnoCode } from '../util/errors.js';

/** `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`. */
export async function loadIgnore(dockerfilePath: string, contextDir: string, signal?: AbortSignal): Promise<IgnoreMatcher | undefined> {
  const file = await findDockerignore(dockerfilePath, contextDir, signal !== undefined ? { signal } : {});
  if (file === undefined) return undefined;
  return createIgnoreMatcher(parseDockerignore(await readFile(file, 'utf8')));
}

/** A named build context's own `.dockerignore` (there is no Dockerfile beside it). */
export async function loadContextIgnore(dir: string): Promise<IgnoreMatcher | undefined> {
  const text = await readFile(join(dir, '.dockerignore'), 'utf8').catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : createIgnoreMatcher(parseDockerignore(text));
}
