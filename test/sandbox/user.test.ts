import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';
import type { SandboxSpec } from '../../src/sandbox/index.js';
import { baseSpec, capture, useSandboxFixture } from './helpers.js';

const fx = useSandboxFixture();

const SCRIPT = 'grep -E "^(Uid|Gid|Groups):" /proc/self/status | tr -s "\\t" " "; echo "HOME=$HOME"';

function spec(user: string, lowerDirs = [fx.rootfs]): SandboxSpec {
  return { ...baseSpec(lowerDirs, fx.workRoot(), SCRIPT), user };
}

async function identity(user: string, lowerDirs?: string[]): Promise<string> {
  const { result, stdout, stderr } = await capture(spec(user, lowerDirs));
  await result.dispose();
  expect(stderr).toBe('');
  return stdout;
}

const ids = (uid: number, gid: number, groups: string, home: string): string =>
  `Uid: ${uid} ${uid} ${uid} ${uid}\nGid: ${gid} ${gid} ${gid} ${gid}\nGroups: ${groups}\nHOME=${home}\n`;

describe('USER resolution inside the rootfs', () => {
  it('defaults to root with no supplementary groups', async () => {
    expect(await identity('')).toBe(ids(0, 0, '', '/root'));
  });

  it('resolves a name from /etc/passwd with supplementary groups from /etc/group', async () => {
    expect(await identity('alice')).toBe(ids(1000, 1000, '10 50 ', '/home/alice'));
    expect(await identity('bob')).toBe(ids(1001, 1001, '50 ', '/home/bob'));
  });

  it('resolves a numeric uid, in passwd or not', async () => {
    expect(await identity('1000')).toBe(ids(1000, 1000, '10 50 ', '/home/alice'));
    expect(await identity('4242')).toBe(ids(4242, 0, '', '/'));
  });

  it('takes an explicit group by name or number (and then no supplementary groups)', async () => {
    expect(await identity('alice:staff')).toBe(ids(1000, 50, '', '/home/alice'));
    expect(await identity('1001:4243')).toBe(ids(1001, 4243, '', '/home/bob'));
  });

  it('fails for unknown names with BuildKit messages', async () => {
    await expect(runInSandbox(spec('nobody'))).rejects.toMatchObject({
      code: 'SANDBOX',
      message: 'unable to find user nobody: no matching entries in passwd file',
    });
    await expect(runInSandbox(spec('alice:nogroup'))).rejects.toMatchObject({
      message: 'unable to find group nogroup: no matching entries in group file',
    });
  });

  it('rejects out-of-range ids (CVE-2024-40635)', async () => {
    for (const user of ['4294967295', '2147483648', '-1', '0:4294967296']) {
      await expect(runInSandbox(spec(user))).rejects.toMatchObject({
        code: 'SANDBOX',
        message: 'uids and gids must be in range 0-2147483647',
      });
    }
  });

  it('never reads a host file through a symlinked /etc/passwd', async () => {
    const hostPasswd = join(fx.dir, 'host-passwd');
    writeFileSync(hostPasswd, 'hostuser:x:4242:4242::/:/bin/sh\n');
    const top = join(fx.dir, 'evil-layer');
    mkdirSync(join(top, 'etc'), { recursive: true });
    symlinkSync(hostPasswd, join(top, 'etc/passwd'));
    await expect(runInSandbox(spec('hostuser', [top, fx.rootfs]))).rejects.toMatchObject({
      message: 'unable to find user hostuser: no matching entries in passwd file',
    });
    symlinkSync('../../../../../../..' + hostPasswd, join(top, 'etc/group'));
    await expect(runInSandbox(spec('0:hostuser', [top, fx.rootfs]))).rejects.toMatchObject({
      message: 'unable to find group hostuser: no matching entries in group file',
    });
  });
});
