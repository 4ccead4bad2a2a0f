/** Runs the tsbuild CLI in-process (the same `main` bin/tsbuild calls) with captured output. */
import { PassThrough } from 'node:stream';
import { runMain } from '../cli/helpers.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function tsbuild(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const r = await runMain(argv, { stdin: new PassThrough(), env });
  return { ...r, stdout: r.stdout.toString('utf8') };
}
