import { closeSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../src/store/lock.js';
import { loadFsx } from '../../src/util/native.js';
import { cleanup, tempDir } from '../layers/fixtures.js';

let dir: string;
beforeEach(() => (dir = tempDir()));
afterEach(() => cleanup(dir));

describe('fsx addon', () => {
  it('is built and takes flock(2) without blocking: a second open file description is refused until the first closes', () => {
    const fsx = loadFsx();
    expect(fsx).toBeDefined();
    const path = join(dir, 'l');
    const a = openSync(path, 'a');
    const b = openSync(path, 'a');
    try {
      expect(fsx!.flock(a, false)).toBe(true);
      expect(fsx!.flock(b, false)).toBe(true); // shared + shared
      expect(fsx!.flock(b, true)).toBe(false); // upgrade blocked by a's shared hold
      closeSync(a);
      expect(fsx!.flock(b, true)).toBe(true);
    } finally {
      closeSync(b);
    }
    expect(() => fsx!.flock(987654, true)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('mknod makes the 0/0 character device overlay uses as a whiteout and reports errno codes', () => {
    const fsx = loadFsx()!;
    const path = join(dir, 'wh');
    fsx.mknod(path, 0o020000, 0, 0);
    const st = lstatSync(path);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(0);
    expect(() => fsx.mknod(path, 0o020000, 0, 0)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    unlinkSync(path);
  });
});

describe('withFileLock', () => {
  it('serialises exclusive holders in one process and releases on error', async () => {
    const path = join(dir, 'lock');
    const order: string[] = [];
    const hold = (name: string, ms: number): Promise<void> =>
      withFileLock(path, async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${name}-`);
      });
    await Promise.all([hold('a', 50), hold('b', 0)]);
    // Either may open the file first; what matters is that the holds never interleave.
    expect([order.join(' '), order.length]).toSatisfy(([o]: [string]) => o === 'a+ a- b+ b-' || o === 'b+ b- a+ a-');
    await expect(withFileLock(path, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(withFileLock(path, () => Promise.resolve(7), AbortSignal.timeout(2000))).resolves.toBe(7);
  });

  it('shared holds join one flock per process; a joined wait another caller aborts goes on waiting', async () => {
    const path = join(dir, 'lease');
    const fsx = loadFsx()!;
    // Another open file description holds it exclusively, as another process's prune would.
    const blocker = openSync(path, 'a');
    expect(fsx.flock(blocker, true)).toBe(true);
    try {
      const first = withFileLock(path, () => Promise.resolve('first'), AbortSignal.timeout(200), 'shared');
      const second = withFileLock(path, () => Promise.resolve('second'), undefined, 'shared');
      await expect(first).rejects.toMatchObject({ name: expect.stringMatching(/Abort|Timeout/) as unknown });
      let settled = false;
      void second.finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 300));
      expect(settled).toBe(false); // still waiting, on a wait of its own
      closeSync(blocker);
      await expect(second).resolves.toBe('second');
    } finally {
      try {
        closeSync(blocker);
      } catch {
        // closed above
      }
    }
    // Nested and concurrent shared holds, then an exclusive one from inside: refused, not a deadlock.
    const inner = await withFileLock(path, () => withFileLock(path, () => Promise.resolve(1), undefined, 'shared'), undefined, 'shared');
    expect(inner).toBe(1);
    await expect(withFileLock(path, () => withFileLock(path, () => Promise.resolve(2)), undefined, 'shared')).rejects.toMatchObject({ code: 'STORE' });
    // Once every shared hold is gone, the exclusive lock is ours, and re-entrant in its context.
    await expect(withFileLock(path, () => withFileLock(path, () => Promise.resolve(3)))).resolves.toBe(3);
  });
});
