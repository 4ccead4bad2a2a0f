import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupStale, runInSandbox } from '../../src/sandbox/index.js';
import { findLauncher } from '../../src/sandbox/launcher.js';
import { encodeSpec } from '../../src/sandbox/protocol.js';
import { prepareWorkRoot } from '../../src/sandbox/workroot.js';
import { capture, hostMounts, processesWith, waitFor, useSandboxFixture } from './helpers.js';

const fx = useSandboxFixture({ workRootsIn: 'runs' });
const spec = fx.spec;

function readState(workRoot: string): { launcher: number; cgroups: string[] } {
  const lines = readFileSync(join(workRoot, 'sandbox.state'), 'utf8').split('\n').map((l) => l.split(' '));
  return {
    launcher: Number(lines.find((l) => l[0] === 'launcher')?.[1]),
    cgroups: lines.filter((l) => l[0] === 'cgroup').map((l) => l.slice(3).join(' ')),
  };
}

/** A unique sleep duration to find the step's processes on the host by. */
const marker = (): string => String(900_000 + Math.floor(Math.random() * 99_999));

/** Processes with `ns` ("mnt:[N]") as their namespace or open as a file. */
function holdersOf(ns: string): number[] {
  const holders: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const links = [`/proc/${pid}/ns/mnt`, ...readdirSync(`/proc/${pid}/fd`).map((fd) => `/proc/${pid}/fd/${fd}`)];
      if (links.some((l) => readlinkOrEmpty(l) === ns)) holders.push(Number(pid));
    } catch {
      // the process ended while we looked
    }
  }
  return holders;
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

describe('sandbox lifecycle', () => {
  it('leaves no mount, process, cgroup or state behind after a run with a background child', async () => {
    const before = hostMounts(fx.dir);
    const bg = marker();
    const s = spec(`sleep ${bg} & echo started`);
    const { result, stdout } = await capture(s);
    expect(stdout).toBe('started\n');
    expect(result.exitCode).toBe(0);
    expect(processesWith('sleep', bg)).toEqual([]);
    expect(hostMounts(fx.dir)).toBe(before);
    expect(existsSync(join(s.workRoot, 'sandbox.state'))).toBe(false);
    await result.dispose();
    await result.dispose(); // idempotent
    expect(readdirSync(s.workRoot)).toEqual([]);
  });

  it('aborts mid-run: everything dies, nothing stays mounted, workRoot is emptied', async () => {
    const before = hostMounts(fx.dir);
    const ac = new AbortController();
    const [bg, fg] = [marker(), marker()];
    const s = spec(`echo ready; sleep ${bg} & exec sleep ${fg}`, {
      onStdout: (c) => {
        if (c.toString().includes('ready')) ac.abort();
      },
    });
    await expect(runInSandbox(s, { signal: ac.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(processesWith('sleep', bg)).toEqual([]);
    expect(processesWith('sleep', fg)).toEqual([]);
    expect(hostMounts(fx.dir)).toBe(before);
    expect(readdirSync(s.workRoot)).toEqual([]);
  });

  it('a SIGINT that reaches the launcher itself (Ctrl-C to the process group) is an abort, not a failed step', async () => {
    const fg = marker();
    const s = spec(`echo ready; exec sleep ${fg}`, {
      onStdout: () => process.kill(readState(s.workRoot).launcher, 'SIGINT'),
    });
    await expect(runInSandbox(s)).rejects.toMatchObject({ code: 'ABORTED', cause: { message: 'sandbox interrupted by SIGINT' } });
    expect(await waitFor(() => processesWith('sleep', fg).length === 0)).toBe(true);
    expect(readdirSync(s.workRoot)).toEqual([]);
  });

  it('rejects at once for an already aborted signal', async () => {
    await expect(runInSandbox(spec('true'), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('dies with its node parent (SIGKILL) and the launcher cleans up', async () => {
    const [bg, fg] = [marker(), marker()];
    const s = spec(`echo ready; sleep ${bg} & exec sleep ${fg}`);
    await prepareWorkRoot(s, s.workRoot);
    const tokens = encodeSpec(s, s.workRoot, { hostsPath: join(s.workRoot, 'hosts'), resolvPath: join(s.workRoot, 'resolv.conf') })
      .toString('utf8').split('\0').slice(1, -1); // without the leading byte count
    tokens[tokens.indexOf('ppid') + 1] = '__PPID__';
    const script = join(fx.dir, 'parent.mjs');
    writeFileSync(script, `
      import { spawn } from 'node:child_process';
      const tokens = JSON.parse(process.env.SPEC_TOKENS).map((t) => (t === '__PPID__' ? String(process.pid) : t));
      const child = spawn(process.argv[2], [], { stdio: ['ignore', 'pipe', 'inherit', 'pipe', 'ignore'] });
      child.stdout.pipe(process.stdout);
      const body = Buffer.from(tokens.map((t) => t + '\\0').join(''));
      child.stdio[3].end(Buffer.concat([Buffer.from(body.length + '\\0'), body]));
    `);
    const parent = spawn(process.execPath, [script, await findLauncher()], { env: { ...process.env, SPEC_TOKENS: JSON.stringify(tokens) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let state: ReturnType<typeof readState>;
    try {
      await new Promise<void>((resolve) => parent.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve()));
      state = readState(s.workRoot);
      expect(alive(state.launcher)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
    const { launcher, cgroups } = state;
    expect(await waitFor(() => processesWith('sleep', bg).length + processesWith('sleep', fg).length === 0)).toBe(true);
    expect(await waitFor(() => !alive(launcher))).toBe(true);
    expect(existsSync(join(s.workRoot, 'sandbox.state'))).toBe(false);
    for (const cg of cgroups) expect(existsSync(cg)).toBe(false);
  });

  it('lets go of the step\'s mount namespace by the time dispose returns, whoever tore it down', async () => {
    // The launcher holds the namespace past the step's exit so the unmount overlaps the commit;
    // nothing may hold it once the work root is gone.
    const s = spec('mkdir -p /d && for i in $(seq 1 200); do echo $i > /d/f$i; done; readlink /proc/self/ns/mnt');
    const { result, stdout } = await capture(s);
    const ns = stdout.trim();
    expect(ns).toMatch(/^mnt:\[\d+\]$/);
    expect(result.exitCode).toBe(0);
    expect(readdirSync(join(result.upperDir, 'd'))).toHaveLength(200);
    await result.dispose();
    expect(readdirSync(s.workRoot)).toEqual([]);
    expect(holdersOf(ns)).toEqual([]);
  });

  it('makes no cgroup for a run without limits (joining one costs a kernel RCU grace period)', async () => {
    let cgroups: string[] | undefined;
    const s = spec('echo ready; sleep 0.2', { onStdout: () => (cgroups = readState(s.workRoot).cgroups) });
    const result = await runInSandbox(s);
    expect(result.exitCode).toBe(0);
    expect(cgroups).toEqual([]);
    await result.dispose();
  });

  it('cleanupStale removes the cgroups of a launcher that was SIGKILLed', async () => {
    let cgroups: string[] = [];
    const fg = marker();
    const s = spec(`echo ready; exec sleep ${fg}`, {
      limits: { pids: 100 },
      onStdout: () => {
        const state = readState(s.workRoot);
        cgroups = state.cgroups;
        process.kill(state.launcher, 'SIGKILL');
      },
    });
    await expect(runInSandbox(s)).rejects.toMatchObject({ code: 'SANDBOX', message: expect.stringContaining('died unexpectedly') as unknown });
    expect(await waitFor(() => processesWith('sleep', fg).length === 0)).toBe(true);
    expect(cgroups.length).toBeGreaterThan(0);
    expect(await waitFor(() => cgroups.every((cg) => existsSync(cg) && readFileSync(join(cg, 'cgroup.procs'), 'utf8') === ''))).toBe(true);
    await cleanupStale(join(fx.dir, 'runs'));
    for (const cg of cgroups) expect(existsSync(cg)).toBe(false);
  });

  it('cleanupStale kills the processes and removes the cgroups listed in a dead launcher state file', async () => {
    const stateDir = join(fx.dir, 'stale');
    const workRoot = join(stateDir, 'wr');
    mkdirSync(workRoot, { recursive: true });
    const own = /^\d+:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
    const cg = join('/sys/fs/cgroup/memory', own, 'tsbuild-stale-test');
    mkdirSync(cg, { recursive: true });
    const victim = spawn('/bin/busybox', ['sleep', '987617'], { stdio: 'ignore' });
    await waitFor(() => existsSync(`/proc/${victim.pid}/stat`));
    const stat = readFileSync(`/proc/${victim.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(join(workRoot, 'sandbox.state'), `launcher 999999999 1\nchild ${victim.pid} ${start}\ncgroup 0 0 ${cg}\n`);
    const exited = new Promise((resolve) => victim.on('exit', (_code, sig) => resolve(sig)));
    await cleanupStale(stateDir);
    expect(await exited).toBe('SIGKILL');
    expect(existsSync(cg)).toBe(false);
    expect(existsSync(join(workRoot, 'sandbox.state'))).toBe(false);
  });
});
