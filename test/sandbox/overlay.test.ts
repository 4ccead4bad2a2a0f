import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { capture, useSandboxFixture } from './helpers.js';

const fx = useSandboxFixture({
  prepare: (root) => {
    mkdirSync(join(root, 'data/keep'), { recursive: true });
    writeFileSync(join(root, 'data/file'), 'lower\n');
    mkdirSync(join(root, 'dir/sub'), { recursive: true });
    writeFileSync(join(root, 'dir/sub/x'), 'x');
  },
});
const spec = fx.spec;

/** Node cannot read xattrs; python's os.getxattr can. */
function getXattr(path: string, name: string): string {
  return execFileSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2]).decode())', path, name], { encoding: 'utf8' }).trim();
}

/** Every path in an upper fx.dir, relative, sorted. */
function tree(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel)).sort().flatMap((name) => {
    const p = rel ? `${rel}/${name}` : name;
    return lstatSync(join(root, p)).isDirectory() ? [p, ...tree(root, p)] : [p];
  });
}

describe('overlay upper dir', () => {
  it('records deletions as 0/0 char device whiteouts and recreated dirs as opaque', async () => {
    const { result, stderr } = await capture(spec('rm /data/file && rm -rf /dir && mkdir /dir && touch /dir/new'));
    expect(stderr).toBe('');
    const wh = lstatSync(join(result.upperDir, 'data/file'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(getXattr(join(result.upperDir, 'dir'), 'trusted.overlay.opaque')).toBe('y');
    expect(tree(result.upperDir)).toEqual(['data', 'data/file', 'dir', 'dir/new']);
    await result.dispose();
    expect(readdirSync(dirname(result.upperDir))).toEqual([]);
  });

  it('leaves no /etc/hosts, /etc/resolv.conf, /proc, /dev, /sys or mount-target stubs in the upper dir', async () => {
    const etcTimes = statSync(join(fx.rootfs, 'etc')).mtimeMs;
    const { result, stdout } = await capture(
      spec('cat /etc/hosts /etc/resolv.conf; ls -d /proc/1 /dev/null /sys/kernel /cache/deep', {
        hostsFile: '10.1.2.3 custom\n',
        resolvConf: 'nameserver 192.0.2.1\n',
        mounts: [{ type: 'tmpfs', target: '/cache/deep' }],
      }),
    );
    expect(stdout).toBe('10.1.2.3 custom\nnameserver 192.0.2.1\n/cache/deep\n/dev/null\n/proc/1\n/sys/kernel\n');
    expect(tree(result.upperDir)).toEqual([]);
    expect(statSync(join(fx.rootfs, 'etc')).mtimeMs).toBe(etcTimes);
    await result.dispose();
  });

  it('keeps real changes next to removed stubs', async () => {
    const { result } = await capture(spec('echo new > /etc/added; chmod 700 /data/keep'));
    expect(tree(result.upperDir)).toEqual(['data', 'data/keep', 'etc', 'etc/added']);
    await result.dispose();
  });

  it('does not create a stub when the lower layer has the file', async () => {
    const top = join(fx.dir, 'with-hosts');
    mkdirSync(join(top, 'etc'), { recursive: true });
    writeFileSync(join(top, 'etc/hosts'), '127.0.0.1 image-hosts\n');
    const { result, stdout } = await capture({ ...spec('cat /etc/hosts; echo x > /etc/hosts'), lowerDirs: [top, fx.rootfs] });
    expect(stdout).toBe('127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    expect(tree(result.upperDir)).toEqual([]);
    await result.dispose();
  });

  it('runs FROM scratch (no lower dirs) with a bind-mounted /bin', async () => {
    const { result, stdout } = await capture({
      ...spec('echo hi > /out; cat /out'),
      lowerDirs: [],
      mounts: [{ type: 'bind', source: join(fx.rootfs, 'bin'), target: '/bin', readonly: true }],
    });
    expect(result.exitCode).toBe(0);
    expect(stdout).toBe('hi\n');
    expect(tree(result.upperDir)).toEqual(['out']);
    await result.dispose();
  });

  it('never lets a symlinked mount target escape the rootfs (CVE-2024-1753)', async () => {
    const hostSide = join(fx.dir, 'host-side');
    mkdirSync(hostSide);
    const top = join(fx.dir, 'evil');
    mkdirSync(top);
    symlinkSync(hostSide, join(top, 'escape'));
    symlinkSync('../../../../../../../../..', join(top, 'up'));
    const { result, stdout } = await capture({
      ...spec(`ls -d ${hostSide}/sub /pwned`),
      lowerDirs: [top, fx.rootfs],
      mounts: [
        { type: 'tmpfs', target: '/escape/sub' },
        { type: 'tmpfs', target: '/up/pwned' },
      ],
    });
    expect(stdout.trim().split('\n').sort()).toEqual([`${hostSide}/sub`, '/pwned'].sort());
    expect(readdirSync(hostSide)).toEqual([]);
    expect(existsSync('/pwned')).toBe(false);
    await result.dispose();
  });
});

describe('many lower dirs', () => {
  let layers: string[];
  beforeAll(() => {
    layers = [];
    for (let i = 0; i < 150; i++) {
      const layer = join(fx.dir, 'layers', `layer-number-${String(i).padStart(3, '0')}`);
      mkdirSync(join(layer, 'stack'), { recursive: true });
      writeFileSync(join(layer, 'stack', `f${i}`), String(i));
      writeFileSync(join(layer, 'stack', 'top'), String(i));
      layers.unshift(layer); // top-most first
    }
  });

  it('mounts 150 lower dirs (lowerdir+)', async () => {
    const { result, stdout } = await capture({ ...spec('ls /stack | wc -l; cat /stack/top'), lowerDirs: [...layers, fx.rootfs] });
    expect(stdout).toBe('151\n149');
    await result.dispose();
  });

  it('mounts 150 lower dirs through short links on kernels without lowerdir+', async () => {
    process.env.TSBUILD_SANDBOX_LEGACY_OVERLAY = '1';
    try {
      const { result, stdout } = await capture({ ...spec('ls /stack | wc -l; cat /stack/top'), lowerDirs: [...layers, fx.rootfs] });
      expect(stdout).toBe('151\n149');
      expect(readdirSync(join(dirname(result.upperDir), 'l'))).toHaveLength(151);
      await result.dispose();
    } finally {
      delete process.env.TSBUILD_SANDBOX_LEGACY_OVERLAY;
    }
  });
});
