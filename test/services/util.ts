import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Run a tool; on failure the error carries its stderr so the test says why. */
export async function run(cmd: string, args: string[], options: { cwd?: string; input?: string } = {}): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd: options.cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `tsbuild-${prefix}-`));
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/** A port nobody listens on right now (small race; callers retry on a bind conflict). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
