/** Runs the tsbuild CLI in-process (the real `main`) with captured stdout (bytes) and stderr. */
import { PassThrough } from 'node:stream';
import { runMain } from '../cli/helpers.js';

export interface CliRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export function runCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runMain(argv, { stdin: new PassThrough(), env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } });
}
