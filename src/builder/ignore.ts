import { statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { resolveInRoot } from '../layers/rootpath.js';
import { createIgnoreMatcher, dockerfileTooLarge, findDockerignore, MAX_DOCKERFILE_BYTES, parseDockerignore, type IgnoreMatcher } from '../parser/index.js';
import { errnoCode, TsbuildError } from '../util/errors.js';
import { readFileUpTo } from '../util/fs.js';

/** `<Dockerfile>.dockerignore` beside the Dockerfile wins over `<context>/.dockerignore`. */
export async function loadIgnore(dockerfilePath: string, contextDir: string, options: { contained: boolean; signal?: AbortSignal }): Promise<IgnoreMatcher | undefined> {
  const file = await findDockerignore(dockerfilePath, contextDir, options.signal !== undefined ? { signal: options.signal } : {});
  if (file === undefined) return undefined;
  return createIgnoreMatcher(parseDockerignore(await readIgnoreText(buildFile(file, options.contained), file, options.signal)));
}

/**
 * A .dockerignore's text, never more than a Dockerfile may have (MAX_DOCKERFILE_BYTES): read whole
 * without a bound, a huge one filled the heap as a huge Dockerfile did. BuildKit's frontend gets it
 * in one gRPC message too. `path` is where to read, `name` what the error calls it.
 */
async function readIgnoreText(path: string, name: string, signal?: AbortSignal): Promise<string> {
  const bytes = await readFileUpTo(path, MAX_DOCKERFILE_BYTES, signal);
  if (bytes === undefined) {
    throw new TsbuildError('CONTEXT', `${name} is larger than the ${MAX_DOCKERFILE_BYTES >> 20} MiB a .dockerignore may have`);
  }
  return bytes.toString('utf8');
}

/**
 * The path to read a Dockerfile or .dockerignore from. The docker CLI follows a symlink there
 * (filepath.EvalSymlinks): a local context is the user's own tree, and a monorepo's Dockerfile may
 * link to a shared one. A context that came from elsewhere (`contained`: a cloned repository, a
 * tar on stdin or from a URL) is read as BuildKit reads a local source, inside the file's own dir:
 * such a context whose Dockerfile links to /etc/shadow must not have tsbuild read, and print, it.
 * Either way it must be a regular file (a FIFO or /dev/zero would hang the read or never end it).
 */
export function buildFile(file: string, contained: boolean): string {
  const path = contained ? withinOwnDir(file) : file;
  const st = statSync(path, { throwIfNoEntry: false });
  if (st !== undefined && !st.isFile()) throw new TsbuildError('CONTEXT', `${file} is not a regular file`);
  return path;
}

/** `file` with a symlink in its last component resolved inside the file's own directory. */
function withinOwnDir(file: string): string {
  const dir = dirname(file);
  return join(dir, ...resolveInRoot(dir, [basename(file)], true));
}

/**
 * A Dockerfile's text, refused with a DockerfileError naming it when over MAX_DOCKERFILE_BYTES,
 * before it is read whole (a huge file filled the heap). A build reads it through `buildFile`
 * (`contained` given: a regular file, symlinks as that says); `check` and `parse` read any file
 * (`-f /dev/stdin` works), never more than the limit.
 */
export async function readDockerfile(path: string, options: { contained?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const from = options.contained === undefined ? path : buildFile(path, options.contained);
  const bytes = await readFileUpTo(from, MAX_DOCKERFILE_BYTES, options.signal);
  if (bytes === undefined) throw dockerfileTooLarge(`Dockerfile ${path}`);
  return bytes.toString('utf8');
}

/** A named build context's own `.dockerignore` (there is no Dockerfile beside it). */
export async function loadContextIgnore(dir: string): Promise<IgnoreMatcher | undefined> {
  const file = join(dir, '.dockerignore');
  const text = await readIgnoreText(buildFile(file, false), file).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  return text === undefined ? undefined : createIgnoreMatcher(parseDockerignore(text));
}
