import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';
import { findLauncher } from '../../src/sandbox/launcher.js';
import { encodeSpec } from '../../src/sandbox/protocol.js';
import { clearWorkRoot, prepareWorkRoot } from '../../src/sandbox/workroot.js';
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/index.js';
import { baseSpec, capture, processesWith, waitFor, useSandboxFixture } from './helpers.js';

const fx = useSandboxFixture();
const spec = fx.spec;
const results: SandboxResult[] = [];

afterEach(async () => {
  for (const r of results.splice(0)) await r.dispose();
});

async function run(script: string, extra: Partial<SandboxSpec> = {}): Promise<{ stdout: string; stderr: string; exitCode: number; signal?: string }> {
  const { result, stdout, stderr } = await capture(spec(script, extra));
  results.push(result);
  return { stdout, stderr, exitCode: result.exitCode, ...(result.signal ? { signal: result.signal } : {}) };
}

describe('runInSandbox basics', () => {
  it('runs a command, streams output and reports exit codes', async () => {
    expect(await run('echo hello; echo oops >&2; exit 7')).toEqual({ stdout: 'hello\n', stderr: 'oops\n', exitCode: 7 });
    expect((await run('true')).exitCode).toBe(0);
  });

  it('reports death by signal as 128+signal', async () => {
    const marker = String(900_000 + Math.floor(Math.random() * 99_999));
    const pending = run(`exec sleep ${marker}`);
    expect(await waitFor(() => processesWith('sleep', marker).length > 0)).toBe(true);
    for (const pid of processesWith('sleep', marker)) process.kill(pid, 'SIGKILL');
    expect(await pending).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
    // Inside, pid 1 ignores even SIGKILL from its own namespace; a child dies normally.
    expect((await run('sh -c "kill -9 \\$\\$"; echo $?')).stdout).toBe('137\n');
  });

  it('resolves args[0] through PATH from env and fails clearly when missing', async () => {
    const s = spec('', { args: ['echo', 'via', 'path'] });
    const { stdout, result } = await capture(s);
    results.push(result);
    expect(stdout).toBe('via path\n');
    await expect(runInSandbox(spec('', { args: ['nope-cmd'] }))).rejects.toMatchObject({
      code: 'SANDBOX',
      message: 'exec: "nope-cmd": executable file not found in $PATH',
    });
  });

  it('passes env exactly, adds HOME from passwd, and creates the cwd', async () => {
    const r = await run('env; pwd; stat -c "%a %u" /work/here', { env: ['PATH=/bin', 'FOO=bar baz'], cwd: '/work/here' });
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(expect.arrayContaining(['FOO=bar baz', 'HOME=/root', 'PATH=/bin', '/work/here', '755 0']));
    expect(lines.filter((l) => l.includes('=')).map((l) => l.split('=')[0]).sort()).toEqual(['FOO', 'HOME', 'PATH', 'PWD', 'SHLVL']);
    const keep = await run('echo $HOME', { env: ['PATH=/bin', 'HOME=/custom'] });
    expect(keep.stdout).toBe('/custom\n');
  });

  it('is pid 1 of its own pid namespace and sees only its processes', async () => {
    const r = await run('echo $$; ps -o pid,args | tail -n +2 | grep -v "ps -o" | wc -l; ls /proc | grep -c "^[0-9]"');
    const [pid, psCount, procCount] = r.stdout.trim().split('\n').map(Number);
    expect(pid).toBe(1);
    expect(psCount).toBeLessThanOrEqual(3); // sh, and the pipeline members still running
    expect(procCount).toBeLessThanOrEqual(6);
  });

  it('sets the hostname in its own UTS namespace', async () => {
    expect((await run('hostname', { hostname: 'builder-box' })).stdout).toBe('builder-box\n');
  });

  it('network none has only lo, up', async () => {
    const r = await run('ip -o link', { network: 'none' });
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  });

  it('network host sees the host interfaces', async () => {
    const r = await run('ip -o link');
    for (const name of Object.keys(networkInterfaces())) expect(r.stdout).toContain(`: ${name}`);
  });

  it('mounts /sys read-only and a fresh /proc', async () => {
    const r = await run('touch /sys/x 2>/dev/null || echo read-only; grep " /sys " /proc/mounts; cat /proc/1/cmdline | tr "\\0" " "');
    expect(r.stdout).toMatch(/^read-only\n/);
    expect(r.stdout).toMatch(/ \/sys sysfs ro,/);
    expect(r.stdout).toContain('/bin/sh -c touch /sys/x');
  });

  it('provides a minimal /dev', async () => {
    const r = await run('ls /dev | tr "\\n" " "; echo; echo x > /dev/null && head -c 4 /dev/zero | wc -c; readlink /dev/fd');
    for (const name of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'ptmx', 'stdout']) expect(r.stdout).toContain(name);
    expect(r.stdout).toContain('\n4\n/proc/self/fd\n');
  });

  it('bounds capabilities and sets no_new_privs', async () => {
    const r = await run('grep -E "^(CapBnd|CapEff|CapInh|CapAmb|NoNewPrivs)" /proc/self/status');
    expect(r.stdout).toContain('CapBnd:\t00000000a80425fb');
    expect(r.stdout).toContain('CapEff:\t00000000a80425fb');
    expect(r.stdout).toContain('CapInh:\t0000000000000000');
    expect(r.stdout).toContain('CapAmb:\t0000000000000000');
    expect(r.stdout).toContain('NoNewPrivs:\t1');
    const alice = await run('grep -E "^(CapBnd|CapEff|CapPrm)" /proc/self/status', { user: 'alice' });
    expect(alice.stdout).toContain('CapEff:\t0000000000000000');
    expect(alice.stdout).toContain('CapPrm:\t0000000000000000');
    expect(alice.stdout).toContain('CapBnd:\t00000000a80425fb');
  });

  it('reads its spec up to the byte count in front, and refuses one without it or cut short', async () => {
    const workRoot = fx.workRoot();
    await prepareWorkRoot(baseSpec([fx.rootfs], workRoot, ''), workRoot);
    const input = encodeSpec(baseSpec([fx.rootfs], workRoot, 'echo counted'), workRoot, { hostsPath: join(workRoot, 'hosts'), resolvPath: join(workRoot, 'resolv.conf') });
    const tokens = input.subarray(input.indexOf(0) + 1);
    /** Runs the launcher on `spec`, keeping its end of the pipe open until the launcher exits. */
    const launch = async (spec: Buffer): Promise<{ out: string; status: string }> => {
      const child = spawn(await findLauncher(), [], { stdio: ['ignore', 'pipe', 'ignore', 'pipe', 'pipe'] });
      let out = '';
      let status = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      child.stdio[4]?.on('data', (c: Buffer) => (status += c.toString()));
      (child.stdio[3] as Writable).write(spec); // no EOF: the count alone must end the read
      const timer = setTimeout(() => (child.stdio[3] as Writable).end(), 3000);
      await new Promise((resolve) => child.on('close', resolve));
      clearTimeout(timer);
      return { out, status };
    };
    try {
      const started = Date.now();
      expect((await launch(input)).out).toBe('counted\n');
      expect(Date.now() - started).toBeLessThan(2500); // it did not wait for the EOF sent at 3 s
      expect((await launch(tokens)).status).toMatch(/^E spec: bad length/);
    } finally {
      await clearWorkRoot(workRoot);
    }
  });

  it('keeps only fds 0-2 open in the step, even ones the launcher inherited', async () => {
    const workRoot = fx.workRoot();
    await prepareWorkRoot(baseSpec([fx.rootfs], workRoot, ''), workRoot);
    const script = 'ls /proc/self/fd | tr "\\n" " "; ls /proc/self/fd/5/ 2>&1 >/dev/null | wc -l';
    const input = encodeSpec(baseSpec([fx.rootfs], workRoot, script), workRoot, { hostsPath: join(workRoot, 'hosts'), resolvPath: join(workRoot, 'resolv.conf') });
    const hostDir = openSync(fx.dir, 'r'); // passed below as fd 5 of the launcher, without CLOEXEC
    try {
      const child = spawn(await findLauncher(), [], { stdio: ['ignore', 'pipe', 'inherit', 'pipe', 'pipe', hostDir] });
      let out = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      (child.stdio[3] as Writable).end(input);
      await new Promise((resolve) => child.on('close', resolve));
      expect(out).toBe('0 1 2 3 1\n'); // 3 = ls's own dir handle; fd 5 is gone
    } finally {
      closeSync(hostDir);
      await clearWorkRoot(workRoot);
    }
  });

  it('never resolves the cwd through a leaked fd (CVE-2024-21626)', async () => {
    const r = spec('pwd; ls', { cwd: '/proc/self/fd/3' });
    await expect(runInSandbox(r)).rejects.toMatchObject({ code: 'SANDBOX', message: expect.stringContaining('working directory /proc/self/fd/3') as unknown });
  });

  it('applies bind and tmpfs mounts, read-only when asked', async () => {
    const src = join(fx.dir, 'bindsrc');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'from host\n');
    const r = await run('cat /mnt/ro/f; touch /mnt/ro/g 2>/dev/null || echo ro-ok; touch /mnt/rw/g && echo rw-ok; grep " /tmpx " /proc/mounts', {
      mounts: [
        { type: 'bind', source: src, target: '/mnt/ro', readonly: true },
        { type: 'bind', source: src, target: '/mnt/rw', readonly: false },
        { type: 'tmpfs', target: '/tmpx', sizeBytes: 1 << 20 },
      ],
    });
    expect(r.stdout).toMatch(/^from host\nro-ok\nrw-ok\ntmpfs \/tmpx tmpfs rw,nosuid,nodev,relatime,size=1024k /);
  });

  it('an overlay mount is writable inside and leaves the host dir and the layer untouched', async () => {
    const src = join(fx.dir, 'cowsrc');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'f'), 'host\n');
    const s = spec('echo inside > /m/f && rm -r /m/sub && touch /m/new && cat /m/f && ls /m | tr "\\n" " "', {
      mounts: [{ type: 'overlay', source: src, target: '/m' }],
    });
    const { result, stdout } = await capture(s);
    results.push(result);
    expect(stdout).toBe('inside\nf new ');
    expect(readFileSync(join(src, 'f'), 'utf8')).toBe('host\n');
    expect(readdirSync(src).sort()).toEqual(['f', 'sub']);
    expect(readdirSync(result.upperDir)).toEqual([]);
  });

  it('mounts the rootfs and overlay mounts volatile: their teardown syncs nothing, the files stay', async () => {
    const src = join(fx.dir, 'volsrc');
    mkdirSync(src, { recursive: true });
    // The rootfs (mounted on /) and the writable overlay on /m: "volatile" (Linux 6.x shows "fsync=volatile").
    const s = spec('awk \'$3 == "overlay" { print $2, (index("," $4 ",", ",volatile,") || index("," $4 ",", ",fsync=volatile,")) ? "volatile" : $4 }\' /proc/mounts; echo kept > /written', {
      mounts: [{ type: 'overlay', source: src, target: '/m' }],
    });
    const { result, stdout } = await capture(s);
    results.push(result);
    expect(stdout).toBe('/ volatile\n/m volatile\n');
    expect(readFileSync(join(result.upperDir, 'written'), 'utf8')).toBe('kept\n');
  });
});
