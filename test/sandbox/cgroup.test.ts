import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';
import { capture, useSandboxFixture } from './helpers.js';

const fx = useSandboxFixture();
const spec = fx.spec;

describe('cgroup limits', () => {
  it('reports an OOM kill under a memory limit', async () => {
    // tail must hold the whole newline-free stream in memory: 300 MiB against a 32 MiB limit.
    const { result } = await capture(spec('head -c 300m /dev/zero | tail > /dev/null', { limits: { memoryBytes: 32 << 20 } }));
    expect(result.oomKilled).toBe(true);
    expect(result.exitCode).not.toBe(0);
    await result.dispose();
  });

  it('does not report OOM for a run within its limit', async () => {
    const { result } = await capture(spec('head -c 10m /dev/zero | wc -c', { limits: { memoryBytes: 64 << 20 } }));
    expect(result.oomKilled).toBe(false);
    expect(result.exitCode).toBe(0);
    await result.dispose();
  });

  it('limits the number of processes', async () => {
    const script = 'i=0; while [ $i -lt 20 ]; do sleep 2 & i=$((i+1)); done 2>/dev/null; ps -o pid | tail -n +2 | wc -l';
    const { result, stdout } = await capture(spec(script, { limits: { pids: 8 } }));
    expect(Number(stdout.trim())).toBeLessThanOrEqual(8);
    await result.dispose();
  });

  it('writes a CPU quota', async () => {
    let quota = '';
    const s = spec('echo ready; sleep 0.3', { limits: { cpus: 0.5 } });
    s.onStdout = () => {
      const state = readFileSync(join(s.workRoot, 'sandbox.state'), 'utf8');
      const cpuDir = /^cgroup 0 0 (\/sys\/fs\/cgroup\/cpu\/.*)$/m.exec(state)?.[1];
      quota = cpuDir ? readFileSync(join(cpuDir, 'cpu.cfs_quota_us'), 'utf8').trim() : 'missing';
    };
    const result = await runInSandbox(s);
    expect(quota).toBe('50000');
    await result.dispose();
  });
});
