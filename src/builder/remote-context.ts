/**
 * Build contexts that are not a local directory, as `docker build URL` takes them:
 * - a Git repository (`git://`, `ssh://`, `git@host:path`, an http(s) URL ending in `.git`), with an
 *   optional `#REF[:SUBDIR]` fragment: cloned with the system `git` into the store's tmp dir, without
 *   its `.git` dir (BuildKit leaves it out by default), the context being SUBDIR inside the clone;
 * - any other http(s) URL: its body is a context tar (plain or compressed) or a Dockerfile alone,
 *   exactly as for `build -` (stdin-context.ts), fetched like `ADD URL` (redirects, size limit,
 *   the CAs the CLI trusts).
 * Both return a dir that goes with `dispose()`.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanComponents, resolveInRoot } from '../layers/rootpath.js';
import type { Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';
import { downloadToBlob, isGitSource } from './add-url.js';
import { contextFromFile, type StdinContext } from './stdin-context.js';

export function isRemoteContext(context: string): boolean {
  return isGitSource(context) || /^https?:\/\//i.test(context);
}

export async function remoteContext(store: Store, context: string, signal?: AbortSignal): Promise<StdinContext> {
  if (isGitSource(context)) return gitContext(store.tmpDir, context, signal);
  const shown = withoutCredentials(context);
  const d = await downloadToBlob(store, context, { label: `build context ${shown}`, ...(signal !== undefined ? { signal } : {}) });
  try {
    // Read where the download put it (hashed on the way in), not copied out again.
    return await contextFromFile(store.blobs.path(d.digest), store.tmpDir, shown, signal);
  } finally {
    // The download was only the way in: the store keeps nothing of it.
    if (d.created) await store.blobs.delete(d.digest);
  }
}

/** `URL#REF:SUBDIR` → its parts (BuildKit's fragment syntax). */
export function parseGitContext(context: string): { url: string; ref?: string; subdir: string[] } {
  const hash = context.indexOf('#');
  const url = hash < 0 ? context : context.slice(0, hash);
  const fragment = hash < 0 ? '' : context.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = cleanComponents(colon < 0 ? '' : fragment.slice(colon + 1));
  return { url, ...(ref !== '' ? { ref } : {}), subdir };
}

/** A URL as errors may show it: a token in its user info (a private repository's usual form) is left out. */
export function withoutCredentials(text: string): string {
  try {
    const url = new URL(text);
    if (url.username === '' && url.password === '') return text;
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return text;
  }
}

async function gitContext(tmpDir: string, given: string, signal?: AbortSignal): Promise<StdinContext> {
  const { url, ref, subdir } = parseGitContext(given);
  const context = withoutCredentials(given);
  // git may quote the URL it was given: its user info never reaches an error.
  const userInfo = context === given ? undefined : /^[a-z+]+:\/\/([^@/]*@)/i.exec(given)?.[1];
  const git = (args: string[]): Promise<void> => runGit(args, context, userInfo, signal);
  if (ref?.startsWith('-') === true || url.startsWith('-')) throw new TsbuildError('USAGE', `invalid git context ${context}`);
  await mkdir(tmpDir, { recursive: true });
  const work = await mkdtemp(join(tmpDir, 'git-'));
  const dispose = (): Promise<void> => rm(work, { recursive: true, force: true });
  try {
    const clone = join(work, 'clone');
    // A commit id cannot be cloned by name: fetch it into a fresh repository instead.
    if (ref !== undefined && /^[0-9a-f]{7,40}$/.test(ref)) {
      await git(['init', '--quiet', clone]);
      await git(['-C', clone, 'fetch', '--quiet', '--depth', '1', '--recurse-submodules=no', '--', url, ref]);
      await git(['-C', clone, 'checkout', '--quiet', 'FETCH_HEAD']);
      await git(['-C', clone, 'submodule', 'update', '--quiet', '--init', '--recursive', '--depth', '1']);
    } else {
      await git(['clone', '--quiet', '--depth', '1', '--recurse-submodules', '--shallow-submodules', ...(ref !== undefined ? ['--branch', ref] : []), '--', url, clone]);
    }
    await rm(join(clone, '.git'), { recursive: true, force: true });
    // The subdir is looked up inside the clone: a symlink in the repository cannot point it outside.
    const dir = join(clone, ...resolveInRoot(clone, subdir, true));
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new TsbuildError('CONTEXT', `${context}: ${subdir.join('/')} is not a directory in the repository`);
    return { dir, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

function runGit(args: string[], context: string, userInfo: string | undefined, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      // Never prompt (no terminal may be there to answer); the user's own git config and SSH agent apply.
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_PROTOCOL_FROM_USER: '0' },
      ...(signal !== undefined ? { signal } : {}),
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('error', (err) => reject(signal?.aborted === true ? err : new TsbuildError('CONTEXT', `${context}: cannot run git: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      const sub = args[0] === '-C' ? args[2] : args[0];
      if (code === 0) return resolve();
      const said = stderr.trim().split('\n').slice(-3).join(' / ');
      reject(new TsbuildError('CONTEXT', `${context}: git ${sub ?? ''} failed (exit ${code ?? 'signal'}): ${userInfo !== undefined ? said.split(userInfo).join('') : said}`));
    });
  });
}
