/**
 * ONBUILD triggers of a base (image or earlier stage), BuildKit style: each stored expression is
 * parsed as one Dockerfile instruction when the base is used, the triggers run right after FROM,
 * before the stage's own instructions, and the child's config has OnBuild cleared.
 */
import { DockerfileError, isDockerfileError, parseDockerfile } from '../parser/index.js';
import type { Instruction, Location } from '../parser/types.js';
import type { StageState } from './state.js';

export interface Trigger {
  instruction: Instruction;
  /** The trigger as stored in the base config (`RUN echo hi`). */
  text: string;
}

/** Takes the base's triggers out of `state` (mutates its config) and parses them. */
export function takeTriggers(state: StageState, baseName: string, from: Location): Trigger[] {
  const cc = state.config.config;
  const stored = cc?.OnBuild ?? [];
  if (cc !== undefined) delete cc.OnBuild;
  return stored.map((text) => ({ instruction: parseTrigger(text, baseName, from), text }));
}

function parseTrigger(text: string, baseName: string, from: Location): Instruction {
  const fail = (why: string): DockerfileError =>
    new DockerfileError(`ONBUILD trigger ${JSON.stringify(text)} of base image ${baseName}: ${why}`, { file: from.file, line: from.startLine, endLine: from.endLine });
  if (/^\s*(FROM|ONBUILD|MAINTAINER)\b/i.test(text)) {
    const kw = (/^\s*(\w+)/.exec(text)?.[1] ?? '').toUpperCase();
    throw fail(kw === 'ONBUILD' ? 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed' : `${kw} isn't allowed as an ONBUILD trigger`);
  }
  let instructions: Instruction[];
  try {
    const df = parseDockerfile(`FROM scratch\n${text}\n`, { file: from.file });
    if (df.stages.length !== 1) throw fail('FROM isn\'t allowed as an ONBUILD trigger');
    instructions = df.stages[0]?.instructions ?? [];
  } catch (err) {
    if (isDockerfileError(err) && err.message.startsWith('ONBUILD trigger')) throw err;
    throw fail(err instanceof Error ? err.message : String(err));
  }
  const [only] = instructions;
  if (only === undefined || instructions.length !== 1) throw fail('a trigger must be exactly one instruction');
  // Errors inside the trigger point at the FROM line that pulled it in.
  return { ...only, location: from };
}
