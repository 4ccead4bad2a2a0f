// The outcome of a step arrives before the launcher exits; dispose() waits for that exit. A stand-in
// launcher (TSBUILD_SANDBOX_LAUNCHER, read once per test file) plays the real one's last moves:
// status line, output closed, then a slow exit, as when the kernel unmounts a large overlay.
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInSandbox } from '../../src/sandbox/index.js';

const dir = mkdtempSync(join(tmpdir(), 'tsbuild-release-'));
const exitedMarker = join(dir, 'launcher-exited');
const launcher = join(dir, 'launcher');
writeFileSync(
  launcher,
  `#!/bin/sh
exec 3<&-
echo step output
echo 'X 3 0 0' >&4
exec 1>&- 2>&- 4>&-
sleep 1
: > '${exitedMarker}'
`,
);
chmodSync(launcher, 0o755);
process.env.TSBUILD_SANDBOX_LAUNCHER = launcher;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sandbox result and launcher exit', () => {
  it('hands over the exit and the output as soon as the launcher closes them, and dispose waits for its exit', async () => {
    const workRoot = join(dir, 'wr');
    let stdout = '';
    const result = await runInSandbox({
      lowerDirs: [], workRoot, args: ['/bin/true'], env: [], cwd: '/', user: '', hostname: 'sandbox', network: 'host', mounts: [],
      onStdout: (c) => (stdout += c.toString()),
    });
    expect(result.exitCode).toBe(3);
    expect(stdout).toBe('step output\n');
    expect(existsSync(exitedMarker)).toBe(false);
    await result.dispose();
    expect(existsSync(exitedMarker)).toBe(true);
    expect(readdirSync(workRoot)).toEqual([]);
  });
});
