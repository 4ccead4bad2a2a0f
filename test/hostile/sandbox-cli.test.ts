// The real CLI (./bin/tsbuild over dist/) under a memory hog and under SIGINT / SIGTERM / SIGKILL
// mid-RUN: clear errors, exit codes, and the host and store left as they were.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore, verifyStore } from '../../src/store/index.js';
import { BUSYBOX_DOCKERFILE, makeContext, tempDir } from '../builder/helpers.js';
import { ensureLauncher, hostMounts as mountsNaming, processesWith, waitFor } from '../sandbox/helpers.js';

const repo = new URL('../../', import.meta.url).pathname;
const BIN = join(repo, 'bin/tsbuild');
let root = '';
const cleanup: string[] = [];

/** Compiles dist/ (and the bundle bin/tsbuild loads) when missing or older than the sandbox and RUN sources this file exercises. */
function ensureDist(): void {
  const bundle = join(repo, 'dist/tsbuild.cjs');
  const sources = [join(repo, 'src/builder/step-run.ts'), join(repo, 'src/builder/mount-ssh-agent.ts'), join(repo, 'src/builder/mount-ssh.ts'), ...readdirSync(join(repo, 'src/sandbox')).map((f) => join(repo, 'src/sandbox', f))];
  if (existsSync(bundle) && sources.every((s) => statSync(s).mtimeMs <= statSync(bundle).mtimeMs)) return;
  try {
    execFileSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(repo, 'tsconfig.build.json')], { stdio: 'ignore' });
  } catch {
    // type errors elsewhere in the tree still emit JavaScript; the bundle is made from it below
  }
  execFileSync(process.execPath, [join(repo, 'scripts/bundle.mjs')], { stdio: 'ignore' });
  if (!existsSync(bundle)) throw new Error('dist/tsbuild.cjs missing: run npm run build');
}

interface Cli {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** CLIs started by the current test; any still running when it ends (a failed test) are killed. */
const started: ChildProcess[] = [];

function cli(args: string[], options: { detached?: boolean; env?: NodeJS.ProcessEnv } = {}): Cli {
  const child = spawn(BIN, ['--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false, env: { ...process.env, CI: '1', ...options.env } });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout?.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  started.push(child);
  return { child, stderr: () => err, exit };
}

async function context(dockerfile: string): Promise<string> {
  const ctx = await makeContext({ Dockerfile: dockerfile });
  cleanup.push(ctx);
  return ctx;
}

/** Resolves with the result, or with 'timeout' after ms. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
}

/** Host mounts a build of ours could have left: any overlay, anything under the store. */
const hostMounts = (): string => mountsNaming(root);

/** The step's own output line (`#N 0.123 step-started`), not the step-start line that quotes it. */
const STARTED = /^#\d+ \d+\.\d+ step-started$/m;

/** RUN work roots in the store's staging area (`tmp/proc-<pid>-<hex>/run-*`), as `proc-…/run-…`. */
const runDirs = (): string[] =>
  readdirSync(join(root, 'tmp')).flatMap((p) => {
    try {
      return readdirSync(join(root, 'tmp', p)).filter((n) => n.startsWith('run-')).map((n) => `${p}/${n}`);
    } catch {
      return [];
    }
  });

/** The store's per-process staging dirs of other processes (this one opens the store to verify it). */
const procDirs = (): string[] => readdirSync(join(root, 'tmp')).filter((n) => !n.startsWith(`proc-${process.pid}-`));

/** The live run's launcher, step pid and cgroups, from the sandbox.state file in its workRoot. */
function liveRun(): { launcher: string; child: string; cgroups: string[] } {
  const [dir] = runDirs();
  const text = readFileSync(join(root, 'tmp', dir ?? '', 'sandbox.state'), 'utf8');
  const line = (kind: string): string => text.split('\n').find((l) => l.startsWith(`${kind} `)) ?? '';
  return { launcher: line('launcher'), child: line('child'), cgroups: text.split('\n').filter((l) => l.startsWith('cgroup ')).map((l) => l.split(' ').slice(3).join(' ')) };
}

/** True while `<kind> pid starttime` (a sandbox.state line) is still the same live process. */
function stillAlive(stateLine: string): boolean {
  const [, pid, start] = stateLine.split(' ');
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] === start && !stat.includes(') Z ');
  } catch {
    return false;
  }
}

async function storeVerifies(): Promise<void> {
  const result = await verifyStore(await openStore(root));
  expect(result.problems).toEqual([]);
  expect(result.ok).toBe(true);
}

beforeAll(async () => {
  ensureDist();
  ensureLauncher();
  root = await tempDir('cli-store');
  cleanup.push(root);
  const bb = await tempDir('cli-bb');
  cleanup.push(bb);
  copyFileSync(BUSYBOX_DOCKERFILE, join(bb, 'Dockerfile'));
  copyFileSync('/bin/busybox', join(bb, 'busybox'));
  const base = cli(['build', '-t', 'busybox:local', '--progress', 'plain', bb]);
  expect(await base.exit, base.stderr()).toEqual({ code: 0, signal: null });
});

afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM'); // the CLI aborts its step; its launcher cleans up
    await new Promise((resolve) => child.once('close', resolve));
  }
});

afterAll(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

describe('--memory through the CLI', () => {
  it('a memory hog fails with an out-of-memory message naming the step and the limit, exit 1', async () => {
    const before = hostMounts();
    const ctx = await context('FROM busybox:local\nRUN head -c 200m /dev/zero | tail > /dev/null\n');
    const run = cli(['build', '-m', '32m', '--progress', 'plain', '--no-cache', ctx]);
    expect((await run.exit).code).toBe(1);
    expect(run.stderr()).toMatch(/error: step "RUN head -c 200m \/dev\/zero \| tail > \/dev\/null" \(\S*Dockerfile:2\) exceeded the memory limit of 32 MiB \(--memory\) and was killed by the kernel OOM killer/);
    expect(run.stderr()).toContain('hint: raise the limit with --memory');
    expect(hostMounts()).toBe(before);
    expect(runDirs()).toEqual([]);
  });
});

describe('signals mid-RUN through the CLI', () => {
  const marker = (): string => String(30_000 + Math.floor(Math.random() * 9_999));

  for (const [sig, group] of [['SIGINT', true], ['SIGTERM', false]] as const) {
    it(`${sig}${group ? ' to the process group (Ctrl-C)' : ''} exits 130 and leaves no mount, process, work dir or store damage`, async () => {
      const before = hostMounts();
      const m = marker();
      const ctx = await context(`FROM busybox:local\nRUN echo step-started && sleep ${m}\n`);
      const run = cli(['build', '--progress', 'plain', '--no-cache', ctx], { detached: group });
      expect(await waitFor(() => STARTED.test(run.stderr()), 20_000)).toBe(true);
      const live = liveRun();
      expect(stillAlive(live.launcher)).toBe(true);
      // `echo step-started` runs before `sleep` is exec'd: wait for it rather than race it.
      expect(await waitFor(() => processesWith('sleep', m).length === 1, 10_000)).toBe(true);
      expect(processesWith('sleep', m)).toHaveLength(1);
      if (group) process.kill(-(run.child.pid ?? 0), sig);
      else run.child.kill(sig);
      const exited = await within(run.exit, 10_000);
      expect(exited).toEqual({ code: 130, signal: null });
      expect(run.stderr()).toContain('interrupted');
      expect(hostMounts()).toBe(before);
      expect(processesWith('sleep', m)).toEqual([]);
      expect(stillAlive(live.launcher)).toBe(false);
      expect(stillAlive(live.child)).toBe(false);
      for (const cg of live.cgroups) expect(existsSync(cg), cg).toBe(false);
      expect(runDirs()).toEqual([]);
      await storeVerifies();
    });
  }

  it('SIGKILL of the CLI: the launcher still kills the step, and the next build removes what is left', async () => {
    const before = hostMounts();
    const m = marker();
    const ctx = await context(`FROM busybox:local\nRUN echo step-started && sleep ${m}\n`);
    const run = cli(['build', '--progress', 'plain', '--no-cache', ctx]);
    expect(await waitFor(() => STARTED.test(run.stderr()), 20_000)).toBe(true);
    const live = liveRun();
    run.child.kill('SIGKILL');
    expect(await within(run.exit, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(await waitFor(() => processesWith('sleep', m).length === 0 && !stillAlive(live.launcher), 10_000)).toBe(true);
    expect(hostMounts()).toBe(before);
    const leftover = runDirs();
    expect(leftover).toHaveLength(1); // node died before its finally: the workRoot is still there
    expect(leftover[0]).toMatch(new RegExp(`^proc-${run.child.pid}-[0-9a-f]+/run-`));

    const next = cli(['build', '--progress', 'plain', '--no-cache', await context('FROM busybox:local\nRUN echo next-build\n')]);
    expect((await next.exit).code, next.stderr()).toBe(0);
    expect(runDirs()).toEqual([]);
    expect(procDirs()).toEqual([]);
    expect(hostMounts()).toBe(before);
    expect(processesWith('sleep', m)).toEqual([]);
    for (const cg of live.cgroups) expect(existsSync(cg), cg).toBe(false);
    await storeVerifies();
  });
});

describe('SIGKILL of the CLI and its launcher together (kill -9 of the process group)', () => {
  it('the step dies with the launcher, and the next build removes the cgroups and work dir left behind', async () => {
    const before = hostMounts();
    const m = String(40_000 + Math.floor(Math.random() * 9_999));
    const ctx = await context(`FROM busybox:local\nRUN echo step-started && (busybox setsid sleep ${m} &) && sleep ${m}\n`);
    // A limit, so the step has cgroups to leave behind (a RUN without one gets none).
    const run = cli(['build', '--progress', 'plain', '--no-cache', '--pids-limit', '100', ctx], { detached: true });
    expect(await waitFor(() => STARTED.test(run.stderr()) && processesWith('sleep', m).length === 2, 20_000)).toBe(true);
    const live = liveRun();
    expect(live.cgroups.length).toBeGreaterThan(0);
    process.kill(-(run.child.pid ?? 0), 'SIGKILL');
    expect(await within(run.exit, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    // The step's pid 1 had PDEATHSIG SIGKILL: the whole pid namespace, the setsid daemon too, is gone.
    expect(await waitFor(() => processesWith('sleep', m).length === 0 && !stillAlive(live.launcher), 10_000)).toBe(true);
    expect(hostMounts()).toBe(before);
    expect(runDirs()).toHaveLength(1);
    for (const cg of live.cgroups) expect(existsSync(cg), cg).toBe(true); // nobody removed them yet

    const next = cli(['build', '--progress', 'plain', '--no-cache', await context('FROM busybox:local\nRUN echo next-build\n')]);
    expect((await next.exit).code, next.stderr()).toBe(0);
    for (const cg of live.cgroups) expect(existsSync(cg), cg).toBe(false);
    expect(runDirs()).toEqual([]);
    expect(procDirs()).toEqual([]);
    expect(hostMounts()).toBe(before);
    await storeVerifies();
  });
});

describe('the CLI rejects a RUN hitting a host-path trick cleanly', () => {
  it('USER with an overflowing uid: clear error, exit 1, nothing left behind', async () => {
    const before = hostMounts();
    const run = cli(['build', '--progress', 'plain', '--no-cache', await context('FROM busybox:local\nUSER 4294967296\nRUN id -u\n')]);
    expect((await run.exit).code).toBe(1);
    expect(run.stderr()).toContain('error: uids and gids must be in range 0-2147483647');
    expect(hostMounts()).toBe(before);
    expect(runDirs()).toEqual([]);
  });
});

/** ssh-agent processes whose parent is `parent`: pid, start time (a sandbox.state-style line) and socket. */
function agentsOf(parent: number): { line: string; socket: string }[] {
  const out: { line: string; socket: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (!stat.includes('(ssh-agent)') || Number(fields[1]) !== parent) continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      out.push({ line: `agent ${name} ${fields[19] ?? ''}`, socket: argv[argv.indexOf('-a') + 1] ?? '' });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

describe('--ssh ID=KEY: the ssh-agent tsbuild starts for the step', () => {
  let key = '';

  beforeAll(async () => {
    const keys = await tempDir('cli-key');
    cleanup.push(keys);
    key = join(keys, 'id');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  });

  /**
   * Starts a build whose RUN holds the agent, SIGKILLs the CLI mid-step, runs `check` on the
   * agent while nothing of ours is left, then a second build; finally the agent must be gone and
   * its socket dir removed. `env`: the first CLI's environment.
   */
  async function killMidStep(check: (agent: { line: string; socket: string }) => Promise<void>, env: NodeJS.ProcessEnv = {}): Promise<void> {
    const m = String(50_000 + Math.floor(Math.random() * 9_999));
    const ctx = await context(`FROM busybox:local\nRUN --mount=type=ssh,id=k,required echo step-started && sleep ${m}\n`);
    const run = cli(['build', '--progress', 'plain', '--no-cache', '--ssh', `k=${key}`, ctx], { env });
    const agents = (): { line: string; socket: string }[] => agentsOf(run.child.pid ?? 0);
    expect(await waitFor(() => STARTED.test(run.stderr()) && agents().length === 1, 20_000), run.stderr()).toBe(true);
    const [agent] = agents();
    if (agent === undefined) throw new Error('no ssh-agent');
    expect(existsSync(agent.socket)).toBe(true);
    try {
      run.child.kill('SIGKILL');
      expect(await within(run.exit, 10_000)).toEqual({ code: null, signal: 'SIGKILL' });
      expect(await waitFor(() => processesWith('sleep', m).length === 0, 10_000)).toBe(true);
      await check(agent);
      const next = cli(['build', '--progress', 'plain', '--no-cache', await context('FROM busybox:local\nRUN echo next-build\n')]);
      expect((await next.exit).code, next.stderr()).toBe(0);
      expect(stillAlive(agent.line)).toBe(false);
      expect(existsSync(dirname(agent.socket)), agent.socket).toBe(false);
      expect(procDirs()).toEqual([]);
      await storeVerifies();
    } finally {
      // A failed run must not leave the agent behind for the next tests.
      const [, pid] = agent.line.split(' ');
      if (stillAlive(agent.line)) process.kill(Number(pid), 'SIGKILL');
      await rm(dirname(agent.socket), { recursive: true, force: true });
    }
  }

  it('dies with the CLI on SIGKILL (PDEATHSIG through setpriv), and the next build removes its socket dir', async () => {
    // Nothing of ours is left to stop it: the kernel must, at once.
    await killMidStep(async (agent) => expect(await waitFor(() => !stillAlive(agent.line), 3_000)).toBe(true));
  });

  it('without setpriv on PATH the agent survives the SIGKILL, and the next build kills it', async () => {
    const bin = await tempDir('cli-path');
    cleanup.push(bin);
    for (const tool of ['node', 'ssh-agent', 'ssh-add']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
    await killMidStep(async (agent) => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(stillAlive(agent.line)).toBe(true);
    }, { PATH: bin });
  });
});
