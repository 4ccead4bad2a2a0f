/** Runs the CLI in-process (main(argv, io)) with captured output, and builds small FROM scratch images. */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The one in-process run of `main` the test helpers share: stdout as bytes (it may be a tar), stderr as text. */
export async function runMain(argv: string[], io: { env: NodeJS.ProcessEnv; stdin: NodeJS.ReadableStream; signal?: AbortSignal }): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
  const code = await main(argv, { stdout: sink(out), stderr: sink(err), stdin: io.stdin, env: io.env, signal: io.signal ?? new AbortController().signal });
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
}

export async function cli(argv: string[], options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; stdin?: string } = {}): Promise<CliResult> {
  const r = await runMain(argv, {
    stdin: Readable.from([options.stdin ?? '']),
    env: options.env ?? { PATH: process.env.PATH ?? '' },
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  });
  return { ...r, stdout: r.stdout.toString('utf8') };
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `tsbuild-cli-${prefix}-`));
}

/** A directory holding the given files (path → content). */
export async function writeTree(dir: string, files: Record<string, string>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

export async function removeAll(dirs: string[]): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}
