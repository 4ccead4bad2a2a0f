/** parseDockerfile: text → directives, typed instructions, meta ARGs and stages. */
import { FlagError } from './bflag.js';
import { DockerfileError } from './errors.js';
import { InstructionError, parseInstruction } from './instructions/parse.js';
import { parseAst } from './lines.js';
import { columnFor, rememberSource } from './locate.js';
import type { ArgInstruction, Dockerfile, Instruction, Stage } from './types.js';

export interface ParseOptions {
  /** Name used in locations and errors (default "Dockerfile"). */
  file?: string;
}

export function parseDockerfile(text: string, options: ParseOptions = {}): Dockerfile {
  const file = options.file ?? 'Dockerfile';
  const { nodes, directives } = parseAst(text, file);
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  const metaArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  for (const node of nodes) {
    const location = { file, startLine: node.startLine, endLine: node.endLine };
    const fail = (message: string, suggestion?: string, cause?: unknown, hint?: string): DockerfileError =>
      new DockerfileError(message, {
        file, line: node.startLine, endLine: node.endLine, cause,
        column: columnFor(message, lines[node.startLine - 1] ?? '', cause instanceof FlagError ? cause.flag : undefined),
        ...(hint === undefined ? {} : { hint }),
        excerpt: lines.slice(node.startLine - 1, node.endLine).join('\n'),
        ...(suggestion === undefined ? {} : { suggestion }),
      });
    let inst: Instruction;
    try {
      inst = parseInstruction(node, location);
    } catch (err) {
      if (err instanceof InstructionError || err instanceof FlagError) throw fail(err.message, err.suggestion, err);
      throw err;
    }
    instructions.push(inst);
    if (inst.kind === 'FROM') {
      stages.push({ index: stages.length, ...(inst.stageName === undefined ? {} : { name: inst.stageName }), from: inst, instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage === undefined) {
      if (inst.kind === 'ARG') { metaArgs.push(inst); continue; }
      throw fail('no build stage in current context', undefined, undefined, 'the first instruction must be FROM (only ARG may come before it)');
    }
    stage.instructions.push(inst);
  }
  const df: Dockerfile = { file, directives, instructions, metaArgs, stages };
  rememberSource(df, text);
  return df;
}
