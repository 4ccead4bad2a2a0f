// Isolation proofs not covered in run.test.ts: namespaces against the host's, pivot_root, what
// the step can see of the host's mounts, daemonized processes, and cgroup limits seen from both sides.
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';
import type { SandboxResult, SandboxSpec } from '../../src/sandbox/index.js';
import { parseCgroupMounts } from '../../src/sandbox/stale.js';
import { capture, hostMounts, processesWith, useSandboxFixture, waitFor } from './helpers.js';

const fx = useSandboxFixture();
const results: SandboxResult[] = [];

afterEach(async () => {
  for (const r of results.splice(0)) await r.dispose();
});

async function run(script: string, extra: Partial<SandboxSpec> = {}): Promise<string> {
  const { result, stdout, stderr } = await capture(fx.spec(script, extra));
  results.push(result);
  expect(stderr).toBe('');
  return stdout;
}

describe('namespaces', () => {
  it('has its own mount, pid, uts and ipc namespaces; the network one only with network none', async () => {
    const kinds = ['mnt', 'pid', 'uts', 'ipc', 'net'];
    const script = kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; ');
    const host = kinds.map((k) => readlinkSync(`/proc/self/ns/${k}`));
    for (const network of ['host', 'none'] as const) {
      const inside = (await run(script, { network })).trim().split('\n');
      expect(inside).toHaveLength(kinds.length);
      kinds.forEach((k, i) => {
        if (k === 'net' && network === 'host') expect(inside[i], k).toBe(host[i]);
        else expect(inside[i], k).not.toBe(host[i]);
      });
    }
  });

  it('keeps its mounts out of the host mount table while it runs', async () => {
    const before = hostMounts(fx.dir);
    let during = '';
    const s = fx.spec('echo ready; sleep 0.3; grep -c . /proc/mounts');
    s.onStdout = (c) => {
      if (c.toString().includes('ready')) during = hostMounts(fx.dir);
    };
    results.push(await runInSandbox(s));
    expect(during).toBe(before);
    expect(during).not.toContain(s.workRoot);
  });
});

describe('pivot_root', () => {
  it('leaves the host root unreachable: / has only the rootfs, .. from / stays, no host mount is visible', async () => {
    const out = await run(
      `ls / | tr "\\n" " "; echo; cd /..; cd ../..; pwd; ls | tr "\\n" " "; echo; [ -e ${fx.dir} ] && echo host-visible; readlink /proc/1/root; ` +
        'cut -d" " -f5 /proc/self/mountinfo | sort | tr "\\n" " "',
    );
    const [rootList, pwd, upList, procRoot, mountPoints] = out.split('\n');
    expect(rootList).toBe('bin dev etc proc sys ');
    expect(pwd).toBe('/');
    expect(upList).toBe(rootList);
    expect(procRoot).toBe('/');
    const points = (mountPoints ?? '').trim().split(' ');
    expect(points).toContain('/');
    for (const p of points) expect(p).toMatch(/^\/((proc|dev|sys)(\/.*)?|etc\/(hosts|resolv\.conf))?$/);
    expect(points).not.toContain('/sys/fs/cgroup');
  });
});

describe('process lifetime', () => {
  it('kills a daemonized (setsid, double-forked) process when the step ends', async () => {
    const marker = String(900_000 + Math.floor(Math.random() * 99_999));
    const out = await run(`(busybox setsid sleep ${marker} &); busybox setsid sh -c "sleep ${marker} &"; sleep 0.2; ps -o pid,args | grep -c "sleep ${marker}$"`);
    expect(Number(out.trim())).toBe(2);
    expect(await waitFor(() => processesWith('sleep', marker).length === 0, 2000)).toBe(true);
  });
});

describe('cgroup v1 limits, read inside and outside', () => {
  it('puts the step in its own groups with the requested memory, pids and cpu limits', async () => {
    const mounts = parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
    const dirOf = (ctrl: string, path: string): string => {
      const m = mounts.find((x) => x.controllers.includes(ctrl));
      if (m === undefined) throw new Error(`no ${ctrl} hierarchy`);
      return join(m.mountPoint, path.slice(m.root.length));
    };
    const limits: Record<string, string> = {};
    const s = fx.spec('cat /proc/self/cgroup; echo ready; sleep 0.3', { limits: { memoryBytes: 64 << 20, pids: 20, cpus: 0.5 } });
    let text = '';
    s.onStdout = (c) => {
      text += c.toString();
      if (!text.includes('ready') || limits.memory !== undefined) return;
      const path = (ctrl: string): string => new RegExp(`^\\d+:([^:]*,)?${ctrl}(,[^:]*)?:(.*)$`, 'm').exec(text)?.[3] ?? '';
      const read = (ctrl: string, file: string): string => readFileSync(join(dirOf(ctrl, path(ctrl)), file), 'utf8').trim();
      limits.memory = read('memory', 'memory.limit_in_bytes');
      limits.pids = read('pids', 'pids.max');
      limits.quota = read('cpu', 'cpu.cfs_quota_us');
      limits.period = read('cpu', 'cpu.cfs_period_us');
      limits.names = ['memory', 'pids', 'cpu'].map((c) => path(c).split('/').at(-1)).join(' ');
    };
    results.push(await runInSandbox(s));
    expect(limits).toMatchObject({ memory: String(64 << 20), pids: '20', quota: '50000', period: '100000' });
    expect(limits.names).toMatch(/^(tsbuild-\d+-\d+) \1 \1$/);
  });
});

describe('cgroup hierarchies from mountinfo (the v2 path is untested on this v1/hybrid host)', () => {
  it('finds v1 controllers, a hybrid unified mount and a pure v2 mount with a non-root mount root', () => {
    const hybrid = [
      '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
      '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct',
      '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate',
      '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    ].join('\n');
    expect(parseCgroupMounts(hybrid)).toEqual([
      { controllers: ['rw', 'memory'], v2: false, root: '', mountPoint: '/sys/fs/cgroup/memory' },
      { controllers: ['rw', 'cpu', 'cpuacct'], v2: false, root: '', mountPoint: '/sys/fs/cgroup/cpu,cpuacct' },
      { controllers: [], v2: true, root: '', mountPoint: '/sys/fs/cgroup/unified' },
    ]);
    const v2 = '29 23 0:26 /kubepods/pod1 /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw\n';
    expect(parseCgroupMounts(v2)).toEqual([{ controllers: [], v2: true, root: '/kubepods/pod1', mountPoint: '/sys/fs/cgroup' }]);
  });
});
