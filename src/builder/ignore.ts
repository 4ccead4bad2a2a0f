import { readFile } from 'node:fs/promises';
import { createIgnoreMatcher, findDockerignore, parseDockerignore, type IgnoreMatcher } from '../parser/index.js';

/** `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`. */
export async function loadIgnore(dockerfilePath: string, contextDir: string, signal?: AbortSignal): Promise<IgnoreMatcher | undefined> {
  const file = await findDockerignore(dockerfilePath, contextDir, signal !== undefined ? { signal } : {});
  if (file === undefined) return undefined;
  return createIgnoreMatcher(parseDockerignore(await readFile(file, 'utf8')));
}
