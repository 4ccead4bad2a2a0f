/**
 * `tsbuild check`: `docker build --check` without building. Exit 0 when clean, 1 when there are
 * findings, 3 (via the DockerfileError) when the file does not parse.
 */
import { basename, join, resolve } from 'node:path';
import { readDockerfile } from '../../builder/ignore.js';
import { checkDockerfile, type CheckFinding } from '../../parser/index.js';
import { TsbuildError, errnoCode } from '../../util/errors.js';
import { flagList, flagString, keyValues } from '../args.js';
import { command, type CliIO, type Command } from './shared.js';

/** docker's source excerpt: the instruction's lines marked `>>>`, one line of context around. */
function excerpt(lines: string[], f: CheckFinding, endLine: number): string {
  const from = Math.max(1, f.line - 1);
  const to = Math.min(lines.length, endLine + 1);
  const width = String(to).length;
  const out: string[] = [];
  for (let n = from; n <= to; n++) {
    const mark = n >= f.line && n <= endLine ? '>>>' : '   ';
    out.push(` ${String(n).padStart(Math.max(3, width))} | ${mark} ${lines[n - 1] ?? ''}`);
  }
  return `--------------------\n${out.join('\n')}\n--------------------\n`;
}

function summary(n: number): string {
  if (n === 0) return 'Check complete, no warnings found.';
  return `Check complete, ${n} warning${n === 1 ? ' has' : 's have'} been found!`;
}

async function runCheck(args: Parameters<Command['run']>[0], io: CliIO): Promise<number> {
  const format = flagString(args, 'format') ?? 'text';
  if (format !== 'text' && format !== 'json') throw new TsbuildError('USAGE', `unknown format ${format}`, { hint: 'use --format text or --format json' });
  if (args.positionals.length > 1) throw new TsbuildError('USAGE', 'usage: tsbuild check [-f FILE] [--format text|json] [PATH]');
  const dir = args.positionals[0] ?? '.';
  const path = resolve(flagString(args, 'file') ?? join(dir, 'Dockerfile'));
  let text: string;
  try {
    text = await readDockerfile(path, { signal: io.signal });
  } catch (err) {
    if (err instanceof TsbuildError) throw err; // too large, not a regular file
    if (errnoCode(err) === 'ENOENT') throw new TsbuildError('NOT_FOUND', `Dockerfile not found: ${path}`, { cause: err, hint: 'pass -f FILE or a PATH that holds a Dockerfile' });
    throw new TsbuildError('USAGE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const file = basename(path);
  const result = checkDockerfile(text, { file, buildArgs: keyValues(flagList(args, 'build-arg'), io.env) });
  if (format === 'json') {
    io.stdout.write(`${JSON.stringify({ file: path, error: result.error, findings: result.findings })}\n`);
    return result.findings.length === 0 ? 0 : 1;
  }
  const lines = text.split('\n');
  const endOf = new Map(result.dockerfile.instructions.map((i) => [i.location.startLine, i.location.endLine]));
  for (const f of result.findings) {
    io.stdout.write(`${f.severity === 'error' ? 'ERROR' : 'WARNING'}: ${f.rule} - ${f.url}\n${f.message}\n${f.file}:${f.line}\n`);
    io.stdout.write(`${excerpt(lines, f, endOf.get(f.line) ?? f.line)}\n`);
  }
  io.stdout.write(`${summary(result.findings.length)}\n`);
  return result.findings.length === 0 ? 0 : 1;
}

export const checkCommands: Record<string, Command> = {
  check: command('Check a Dockerfile against the build checks (docker build --check)', 'check [-f FILE] [--format text|json] [PATH]', [
    { name: 'file', short: 'f', kind: 'string', help: 'Dockerfile path (default PATH/Dockerfile)' },
    { name: 'format', kind: 'string', help: 'text (default) or json' },
    { name: 'build-arg', kind: 'list', help: 'build-time variable KEY=VALUE (BUILDKIT_DOCKERFILE_CHECK too)' },
  ], runCheck),
};
