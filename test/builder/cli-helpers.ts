/** Runs the tsbuild CLI in-process (the real `main`) with captured stdout/stderr. */
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const out = new PassThrough();
  const err = new PassThrough();
  const outChunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  out.on('data', (c: Buffer) => outChunks.push(c));
  err.on('data', (c: Buffer) => errChunks.push(c));
  const code = await main(argv, {
    stdout: out,
    stderr: err,
    stdin: new PassThrough(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    signal: new AbortController().signal,
  });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: Buffer.concat(outChunks), stderr: Buffer.concat(errChunks).toString('utf8') };
}
