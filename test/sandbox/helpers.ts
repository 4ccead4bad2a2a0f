// Shared fixtures for the sandbox tests: a busybox rootfs, temp dirs, and the compiled launcher.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/index.js';

const repo = new URL('../../', import.meta.url).pathname;
const BUSYBOX = '/bin/busybox';
export const APPLETS = ['sh', 'echo', 'cat', 'ls', 'id', 'hostname', 'mount', 'ip', 'sleep', 'touch', 'rm', 'mkdir',
  'ps', 'grep', 'head', 'tail', 'seq', 'stat', 'pwd', 'true', 'false', 'kill', 'readlink', 'ln', 'wc', 'tr', 'env'];

/** Builds dist/native/sandbox when it is missing or older than native/* (atomically: test files run in parallel). */
export function ensureLauncher(): void {
  const out = join(repo, 'dist/native/sandbox');
  const srcDir = join(repo, 'native');
  const newest = Math.max(...readdirSync(srcDir).map((f) => statSync(join(srcDir, f)).mtimeMs));
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return;
  mkdirSync(join(repo, 'dist/native'), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-static-pie', '-o', tmp, join(srcDir, 'sandbox.c')], { stdio: 'inherit' });
  renameSync(tmp, out);
}

export async function tempDir(prefix = 'tsbuild-sandbox-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n';
const GROUP = 'root:x:0:\nalice:x:1000:\nbob:x:1001:\nstaff:x:50:alice,bob\nwheel:x:10:alice\n';

/** A minimal rootfs: busybox with applet links in /bin, /etc/passwd and /etc/group. */
export function makeRootfs(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  execFileSync('chmod', ['755', join(dir, 'bin/busybox')]);
  for (const applet of APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  writeFileSync(join(dir, 'etc/passwd'), PASSWD);
  writeFileSync(join(dir, 'etc/group'), GROUP);
  return dir;
}

export interface Captured {
  result: SandboxResult;
  stdout: string;
  stderr: string;
}

export function baseSpec(lowerDirs: string[], workRoot: string, script: string): SandboxSpec {
  return {
    lowerDirs, workRoot, args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/', user: '',
    hostname: 'sandbox', network: 'host', mounts: [],
  };
}

/** Runs a spec and collects its output as strings. */
export async function capture(spec: SandboxSpec, signal?: AbortSignal): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const result = await runInSandbox(
    { ...spec, onStdout: (c) => (stdout += c.toString()), onStderr: (c) => (stderr += c.toString()) },
    signal ? { signal } : {},
  );
  return { result, stdout, stderr };
}

/**
 * The host's mount table, without the mounts of the host's own container engine (a docker daemon
 * on the test host mounts and unmounts under /var/lib/docker and /run/docker at any time). With
 * `paths`, only the mounts a leak of ours would show: any overlay, and anything naming one of
 * `paths` (other suites mount and unmount their own fixtures while we run).
 */
export function hostMounts(...paths: string[]): string {
  const foreign = /^\S+ \/(var\/lib\/docker|run\/docker|run\/containerd|run\/netns)[/ ]/;
  const ours = (l: string): boolean => paths.length === 0 || l.startsWith('overlay ') || paths.some((p) => l.includes(p));
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => !foreign.test(l) && ours(l)).join('\n');
}

/** Host pids whose command line contains all of `words` (as separate argv entries). */
export function processesWith(...words: string[]): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (words.every((w) => argv.includes(w))) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

export async function waitFor(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

export interface SandboxFixture {
  /** A temp dir for the file's tests; removed after them. */
  readonly dir: string;
  /** A busybox rootfs inside `dir`. */
  readonly rootfs: string;
  /** A fresh, empty workRoot inside `dir`. */
  workRoot: () => string;
  /** The base spec for `script` over the rootfs, in a fresh workRoot. */
  spec: (script: string, extra?: Partial<SandboxSpec>) => SandboxSpec;
}

/**
 * Registers beforeAll/afterAll that make (and remove) the temp dir and rootfs every sandbox test
 * file uses. `prepare` adds files to the rootfs; `workRootsIn` puts workRoots in a subdir of `dir`.
 */
export function useSandboxFixture(options: { prepare?: (rootfs: string) => void; workRootsIn?: string } = {}): SandboxFixture {
  let n = 0;
  const fx = {
    dir: '',
    rootfs: '',
    workRoot: (): string => {
      const workRoot = join(fx.dir, options.workRootsIn ?? '', `wr${n++}`);
      mkdirSync(workRoot, { recursive: true });
      return workRoot;
    },
    spec: (script: string, extra: Partial<SandboxSpec> = {}): SandboxSpec => ({ ...baseSpec([fx.rootfs], fx.workRoot(), script), ...extra }),
  };
  beforeAll(async () => {
    ensureLauncher();
    fx.dir = await tempDir();
    fx.rootfs = makeRootfs(join(fx.dir, 'rootfs'));
    options.prepare?.(fx.rootfs);
  });
  afterAll(async () => removeDir(fx.dir));
  return fx;
}
