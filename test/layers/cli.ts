/** Runs the tsbuild CLI in-process (the same `main` bin/tsbuild calls) with captured output. */
import { PassThrough, Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export async function tsbuild(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const out = sink();
  const err = sink();
  const code = await main(argv, { stdout: out.stream, stderr: err.stream, stdin: new PassThrough(), env, signal: new AbortController().signal });
  return { code, stdout: out.text(), stderr: err.text() };
}
