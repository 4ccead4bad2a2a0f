// Sandbox escapes, each test named after the advisory whose class it proves closed. Real
// namespaces, real overlayfs, as root; the "host" is a temp dir whose contents must not change.
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/index.js';
import { findLauncher } from '../../src/sandbox/launcher.js';
import { capture, hostMounts, useSandboxFixture } from '../sandbox/helpers.js';

const repo = new URL('../../', import.meta.url).pathname;
/**
 * Every run in this file goes through a launcher wrapper that leaks host fds the way a careless
 * parent would: no CLOEXEC on a host dir (fd 7) and a host file (fd 8). No step may see them.
 */
const fx = useSandboxFixture({
  prepare: (rootfs) => {
    const dir = join(rootfs, '..');
    const wrapper = join(dir, 'leaky-launcher');
    writeFileSync(wrapper, `#!/bin/sh\nexec 7<"${dir}" 8<"${join(rootfs, 'etc/passwd')}"\nexec "${join(repo, 'dist/native/sandbox')}"\n`);
    chmodSync(wrapper, 0o755);
    process.env.TSBUILD_SANDBOX_LAUNCHER = wrapper;
  },
});
afterAll(() => {
  delete process.env.TSBUILD_SANDBOX_LAUNCHER;
});
const results: SandboxResult[] = [];

afterEach(async () => {
  for (const r of results.splice(0)) await r.dispose();
});

/** Every path under a host dir with its content (files) or link target, to prove it unchanged. */
function snapshotTree(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel)).sort().flatMap((name) => {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, p));
    if (st.isDirectory()) return [`${p}/`, ...snapshotTree(root, p)];
    if (st.isSymbolicLink()) return [`${p} -> link`];
    return [`${p} = ${readFileSync(join(root, p), 'utf8')}`];
  });
}

/** A host dir standing for host files an image might aim at: a few sentinel files and dirs. */
function makeHostSentinel(name: string): { dir: string; before: string[] } {
  const dir = join(fx.dir, name);
  mkdirSync(join(dir, 'deep'), { recursive: true });
  for (const f of ['hosts', 'resolv.conf', 'passwd', 'null', 'keep']) writeFileSync(join(dir, f), `host ${f}\n`);
  writeFileSync(join(dir, 'deep/keep'), 'host deep\n');
  return { dir, before: snapshotTree(dir) };
}

/** A top layer over the busybox rootfs. */
function layer(name: string, build: (dir: string) => void): string {
  const dir = join(fx.dir, name);
  mkdirSync(dir, { recursive: true });
  build(dir);
  return dir;
}

async function run(script: string, extra: Partial<SandboxSpec> = {}): Promise<{ stdout: string; stderr: string; result: SandboxResult }> {
  const out = await capture(fx.spec(script, extra));
  results.push(out.result);
  return out;
}

function upperTree(result: SandboxResult): string[] {
  return snapshotTree(result.upperDir);
}

describe('CVE-2024-21626 (leaked fds, cwd through /proc/self/fd)', () => {
  it('closes every fd not meant for the step before exec, even ones the launcher inherited', async () => {
    expect(await findLauncher()).toMatch(/leaky-launcher$/);
    // What the exec'd step holds: ls lists its own fds, where 3 is the directory it is reading.
    // (Listing the shell's fds through `ls /proc/$$/fd | tr` raced with the shell's own pipe fds.)
    const listed = await run('exec ls /proc/self/fd');
    expect(listed.result.exitCode).toBe(0);
    expect(listed.stdout.split('\n').filter(Boolean).sort()).toEqual(['0', '1', '2', '3']);
    const { stdout, result } = await run('for n in 3 4 5 6 7 8 9; do [ -e /proc/$$/fd/$n ] && echo "open $n"; done; echo checked');
    expect(result.exitCode).toBe(0);
    expect(stdout).toBe('checked\n');
  });

  it('refuses a working directory reached through a /proc magic link', async () => {
    for (const cwd of ['/proc/self/fd/7', '/proc/self/fd/3', '/proc/1/cwd', '/proc/self/root/tmp', '/proc/self/cwd/..']) {
      await expect(runInSandbox(fx.spec('pwd; ls', { cwd }))).rejects.toMatchObject({
        code: 'SANDBOX',
        message: expect.stringMatching(new RegExp(`^working directory ${cwd.replace(/[.]/g, '\\.')}: `)) as unknown,
      });
    }
  });

  it('a step that cds through /proc/self/fd finds nothing of the host', async () => {
    const { stdout } = await run('for n in 3 4 5 6 7 8 9 10; do cd /proc/self/fd/$n 2>/dev/null && pwd; done; echo done');
    expect(stdout).toBe('done\n');
  });
});

describe('image paths that are symlinks to host paths (mounts and stubs stay in the rootfs)', () => {
  it('/dev, /proc and /sys symlinked to host dirs', async () => {
    const [dev, proc, sys] = [makeHostSentinel('host-dev'), makeHostSentinel('host-proc'), makeHostSentinel('host-sys')];
    const mountsBefore = hostMounts(fx.dir);
    const top = layer('evil-devproc', (d) => {
      symlinkSync(dev.dir, join(d, 'dev'));
      symlinkSync(proc.dir, join(d, 'proc'));
      symlinkSync('../../../../../../..' + sys.dir, join(d, 'sys'));
    });
    const { stdout, result } = await run('echo x > /dev/null && cat /proc/1/cmdline | tr "\\0" " "; echo; ls /dev /proc /sys | grep -c keep; echo done', {
      lowerDirs: [top, fx.rootfs],
    });
    expect(stdout).toMatch(/^\/bin\/sh -c .*\n0\ndone\n$/);
    expect(result.exitCode).toBe(0);
    for (const host of [dev, proc, sys]) expect(snapshotTree(host.dir)).toEqual(host.before);
    expect(hostMounts(fx.dir)).toBe(mountsBefore);
    expect(upperTree(result)).toEqual([]); // the in-root dirs the symlinks led to were stubs
  });

  it('/etc symlinked to a host dir', async () => {
    const host = makeHostSentinel('host-etc');
    const top = layer('evil-etc', (d) => symlinkSync(host.dir, join(d, 'etc')));
    const { stdout, result } = await run('cat /etc/hosts /etc/resolv.conf; ls /etc | tr "\\n" " "', {
      lowerDirs: [top, fx.rootfs],
      hostsFile: '127.0.0.1 ours\n',
      resolvConf: 'nameserver 192.0.2.53\n',
    });
    expect(stdout).toBe(`127.0.0.1 ours\nnameserver 192.0.2.53\nhosts resolv.conf `);
    expect(snapshotTree(host.dir)).toEqual(host.before);
    expect(upperTree(result)).toEqual([]);
  });

  it('/etc/hosts and /etc/resolv.conf symlinked to host files', async () => {
    const host = makeHostSentinel('host-files');
    const top = layer('evil-hosts', (d) => {
      mkdirSync(join(d, 'etc'));
      symlinkSync(join(host.dir, 'hosts'), join(d, 'etc/hosts'));
      symlinkSync(`../../../../../../../../..${host.dir}/resolv.conf`, join(d, 'etc/resolv.conf'));
    });
    const { stdout, result } = await run('cat /etc/hosts /etc/resolv.conf; echo overwrite > /etc/hosts; echo ok', {
      lowerDirs: [top, fx.rootfs],
      hostsFile: '127.0.0.1 ours\n',
      resolvConf: 'nameserver 192.0.2.53\n',
    });
    expect(stdout).toBe('127.0.0.1 ours\nnameserver 192.0.2.53\nok\n');
    expect(snapshotTree(host.dir)).toEqual(host.before);
    expect(upperTree(result)).toEqual([]);
  });
});

describe('CVE-2024-40635 (USER id overflow) and CVE-2024-1753-class passwd lookups', () => {
  it('never runs as root by overflow: out-of-range ids fail clearly', async () => {
    for (const user of ['4294967296', '2147483648', '-1', '18446744073709551616', '0:-5', 'root:4294967296']) {
      await expect(runInSandbox(fx.spec('id -u', { user }))).rejects.toMatchObject({
        code: 'SANDBOX',
        message: 'uids and gids must be in range 0-2147483647',
      });
    }
  });

  it('reads /etc/passwd inside the rootfs even when it is a symlink to a host file', async () => {
    // The host file maps names to ids; shadow-like lines (root:*:19000:...) would make `root` 19000.
    const hostFile = join(fx.dir, 'host-shadow');
    writeFileSync(hostFile, 'root:*:19000:0:99999:7:::\nhostuser:x:4242:4242::/:/bin/sh\n');
    for (const target of ['/etc/shadow', hostFile, `../../../../../../../..${hostFile}`]) {
      const top = layer(`evil-passwd-${target.length}-${target.startsWith('/etc') ? 'shadow' : 'file'}`, (d) => {
        mkdirSync(join(d, 'etc'));
        symlinkSync(target, join(d, 'etc/passwd'));
      });
      for (const user of ['hostuser', 'root']) {
        await expect(runInSandbox(fx.spec('id -u', { user, lowerDirs: [top, fx.rootfs] }))).rejects.toMatchObject({
          message: `unable to find user ${user}: no matching entries in passwd file`,
        });
      }
      const { stdout } = await run('id -u; id -g', { user: '4242', lowerDirs: [top, fx.rootfs] });
      expect(stdout).toBe('4242\n0\n'); // numeric: no passwd entry, so gid 0, never the host file's 4242
    }
  });
});

describe('CVE-2024-23652 (mount teardown deleting host files)', () => {
  it('a step that swaps stub parents for symlinks to the host never gets host files removed', async () => {
    const host = makeHostSentinel('host-victim');
    const mountsBefore = hostMounts(fx.dir);
    const script = `mv /cache /cache.moved && ln -s ${host.dir} /cache && mv /mnt /mnt.moved && ln -s ${host.dir}/deep /mnt && echo done`;
    const { stdout, result } = await run(script, {
      mounts: [
        { type: 'tmpfs', target: '/cache/keep' },
        { type: 'tmpfs', target: '/cache/deep' },
        { type: 'tmpfs', target: '/mnt/deep/x' },
      ],
    });
    expect(stdout).toBe('done\n');
    expect(result.exitCode).toBe(0);
    expect(snapshotTree(host.dir)).toEqual(host.before);
    expect(hostMounts(fx.dir)).toBe(mountsBefore);
    // The step's own changes stay in the layer: the symlinks it made, the moved dirs.
    const upper = upperTree(result);
    expect(upper).toEqual(expect.arrayContaining(['cache -> link', 'mnt -> link', 'cache.moved/', 'mnt.moved/']));
  });

  it('a step that plants files where stubs go keeps them; only our empty stubs are removed', async () => {
    const { stdout, result } = await run('echo data > /cache.txt; mkdir -p /made/by/step; echo ok', {
      mounts: [{ type: 'tmpfs', target: '/made/by/mount' }],
    });
    expect(stdout).toBe('ok\n');
    expect(upperTree(result)).toEqual(['cache.txt = data\n', 'made/', 'made/by/', 'made/by/step/']);
  });
});
