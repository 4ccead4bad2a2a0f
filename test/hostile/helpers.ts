/**
 * Shared pieces of the crash / concurrency / disk-full tests: run the real CLI (`bin/tsbuild`,
 * i.e. dist/ after `npm run build`; TSBUILD_TEST_CLI may point at another executable like
 * it) against a private --root, kill it at seeded random points, and check the
 * store with `tsbuild prune --verify` and the host for leftover mounts and processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seeded } from '../support/seeded.js';

export { seeded };

const REPO = new URL('../../', import.meta.url).pathname;
const CLI = process.env.TSBUILD_TEST_CLI ?? join(REPO, 'bin', 'tsbuild');
const LAUNCHER = join(REPO, 'dist', 'native', 'sandbox');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** These suites drive the built CLI: a missing build is a failure to fix, never a reason to skip. */
export function requireCli(): void {
  const built = existsSync(CLI) && existsSync(LAUNCHER) && (process.env.TSBUILD_TEST_CLI !== undefined || existsSync(join(REPO, 'dist', 'tsbuild.cjs')));
  if (!built) throw new Error('the tsbuild CLI is not built: run `npm run build` first (`npm test` does)');
}

/** Starts `tsbuild --root ROOT ...args` (not awaited) so a test can kill it. */
export function startCli(root: string, args: string[], options: { input?: string } = {}): ChildProcess & { result: Promise<CliResult> } {
  const env: NodeJS.ProcessEnv = { ...process.env, TSBUILD_SANDBOX_LAUNCHER: process.env.TSBUILD_SANDBOX_LAUNCHER ?? LAUNCHER, NO_COLOR: '1' };
  delete env.TSBUILD_ROOT;
  // The launcher itself (a sh script that execs node: the pid a test kills is node's).
  const child = spawn(CLI, ['--root', root, ...args], { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  const result = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return Object.assign(child, { result });
}

export function cli(root: string, args: string[], options: { input?: string } = {}): Promise<CliResult> {
  return startCli(root, args, options).result;
}

/** cli() that fails the test with the CLI's stderr unless it exits 0. */
export async function cliOk(root: string, args: string[]): Promise<CliResult> {
  const r = await cli(root, args);
  if (r.code !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr}${r.stdout}`);
  return r;
}


export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `tsbuild-${prefix}-`));
}

/** A busybox-base context (fixtures/busybox) in `dir`. */
export async function busyboxContext(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(join(REPO, 'fixtures', 'busybox', 'Dockerfile'), join(dir, 'Dockerfile'));
  await copyFile('/bin/busybox', join(dir, 'busybox'));
  return dir;
}

/** An app context on top of the local busybox base: RUN + COPY. */
export async function appContext(dir: string, variant = 'a', base = 'busybox:local', bigBytes = 2 << 20): Promise<string> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'src', 'hello.txt'), `hello ${variant}\n`);
  // Pseudo-random (seeded by the variant) so compression has real work and sizes are stable.
  const big = Buffer.alloc(bigBytes);
  const next = seeded(variant.charCodeAt(0));
  for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE(Math.floor(next() * 0x100000000), i);
  await writeFile(join(dir, 'src', 'big.bin'), big);
  await writeFile(
    join(dir, 'Dockerfile'),
    [`FROM ${base}`, `RUN mkdir -p /app && echo ${variant} > /app/run.txt && dd if=/dev/zero of=/app/zero bs=64k count=16 2>/dev/null`, 'COPY src/ /app/src/', 'CMD ["cat", "/app/run.txt"]', ''].join('\n'),
  );
  return dir;
}

/** `tsbuild prune --verify`: exit 0 and "no problems", else the problems. */
export async function verify(root: string): Promise<{ ok: boolean; output: string }> {
  const r = await cli(root, ['prune', '--verify']);
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}

/** /proc/mounts lines that mention `root`. */
export async function mountsUnder(root: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(root));
}

/** Pids (other than ours) whose cmdline, cwd or root points into `root`. */
export async function processesUnder(root: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const links = await Promise.all(['cwd', 'root'].map((l) => readlink(`/proc/${pid}/${l}`).catch(() => '')));
      if (cmd.includes(root) || links.some((l) => l.startsWith(root))) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Waits until `pred` holds or `ms` pass (processes die asynchronously after SIGKILL). */
export async function eventually<T>(fn: () => Promise<T>, pred: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}
