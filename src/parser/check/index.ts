/**
 * `docker build --check` without building: BuildKit's lint rules over the parsed Dockerfile, with a
 * light model of what dispatch knows (ARG/ENV scope per stage, SHELL, WORKDIR, stage names).
 * Base images are not pulled, so their ENV is unknown unless the caller supplies it (`baseEnv`).
 */
import { DockerfileError } from '../errors.js';
import { trimLeftSpace } from '../gostr.js';
import { locateError } from '../locate.js';
import { parseDockerfile } from '../parse.js';
import { expandWordWithMatches } from '../shell/index.js';
import { suggest } from '../suggest.js';
import type { Dockerfile, Instruction, Location } from '../types.js';
import { parseCheckConfig, type CheckConfig } from './directive.js';
import { checkFrom, type GlobalScope } from './from.js';
import { RULES, looksSecret, ruleUrl, type RuleName } from './rules.js';
import { ownValue } from '../../util/own.js';

export { RULES, RULE_NAMES, ruleUrl, type RuleName } from './rules.js';

export interface CheckFinding {
  rule: string;
  severity: 'warning' | 'error';
  message: string;
  description: string;
  file: string;
  line: number;
  column: number;
  url: string;
}

export interface CheckOptions {
  file?: string;
  buildArgs?: Record<string, string>;
  /** ENV of a base image, when known (e.g. from the local store); PATH is assumed otherwise. */
  baseEnv?: (image: string) => Readonly<Record<string, string>> | undefined;
}

export interface CheckResult {
  file: string;
  findings: CheckFinding[];
  /** `error=true` in the check directive: findings fail a build. */
  error: boolean;
  dockerfile: Dockerfile;
}

export type Report = (rule: RuleName, loc: Location, ...args: (string | undefined)[]) => void;

interface StageState {
  env: Map<string, string>;
  /** ARGs declared in this stage: visible to expansion, not inherited by child stages. */
  args: Map<string, string>;
  shellSet: boolean;
  workdirSet: boolean;
}

export function checkDockerfile(text: string, opts: CheckOptions = {}): CheckResult {
  const df = parseDockerfile(text, opts.file === undefined ? {} : { file: opts.file });
  try {
    return checkParsed(df, text, opts);
  } catch (e) {
    throw locateError(e, df);
  }
}

function checkParsed(df: Dockerfile, text: string, opts: CheckOptions): CheckResult {
  const file = df.file;
  const lines = text.split('\n');
  const cfgLine = lines.findIndex((l) => /^#\s*check\s*=/i.test(l)) + 1;
  const cfg: CheckConfig = parseCheckConfig(opts.buildArgs?.BUILDKIT_DOCKERFILE_CHECK ?? df.directives.check, file, Math.max(1, cfgLine));
  const findings: CheckFinding[] = [];
  const report: Report = (rule, loc, ...args) => {
    if (cfg.skipAll || cfg.skip.has(rule)) return;
    const src = lines[loc.startLine - 1] ?? '';
    const r = RULES[rule] as { description: string; format: (...a: (string | undefined)[]) => string };
    findings.push({
      rule, severity: cfg.error ? 'error' : 'warning', message: r.format(...args), description: r.description,
      file, line: loc.startLine, column: 1 + src.length - trimLeftSpace(src).length, url: ruleUrl(rule),
    });
  };
  checkCasing(df, report);
  const global = checkFrom(df, opts.buildArgs ?? {}, report);
  for (const inst of df.metaArgs) for (const a of inst.args) if (looksSecret(a.key)) report('SecretsUsedInArgOrEnv', inst.location, 'ARG', a.key);

  const finals: StageState[] = [];
  for (const st of df.stages) {
    const parent = global.parentStage[st.index];
    const from = parent === undefined ? undefined : finals[parent];
    const state: StageState = from !== undefined
      ? { env: new Map(from.env), args: new Map(), shellSet: from.shellSet, workdirSet: from.workdirSet }
      : { env: baseEnvOf(global.baseNames[st.index] ?? '', opts.baseEnv), args: new Map(), shellSet: false, workdirSet: false };
    checkStage(st.instructions, state, global, opts.buildArgs ?? {}, df.directives.escape, report);
    finals.push(state);
  }
  findings.sort((a, b) => a.line - b.line);
  return { file, findings, error: cfg.error, dockerfile: df };
}

function baseEnvOf(base: string, known: CheckOptions['baseEnv']): Map<string, string> {
  if (base === 'scratch') return new Map();
  const env = known?.(base);
  return new Map(Object.entries(env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' }));
}

function checkCasing(df: Dockerfile, report: Report): void {
  const words = df.instructions.map((i) => trimLeftSpace(i.original).split(/[\t\v\f\r ]/, 1)[0] ?? '');
  const lower = words.filter((w) => w === w.toLowerCase()).length;
  const upper = words.filter((w) => w === w.toUpperCase()).length;
  const majorityLower = lower > upper;
  df.instructions.forEach((inst, i) => {
    const w = words[i] ?? '';
    if (majorityLower ? w !== w.toLowerCase() : w !== w.toUpperCase()) {
      report('ConsistentInstructionCasing', inst.location, w, majorityLower ? 'lowercase' : 'uppercase');
    }
  });
}

function checkStage(insts: Instruction[], state: StageState, global: GlobalScope, buildArgs: Record<string, string>, escape: '\\' | '`', report: Report): void {
  const once = new Map<string, Location>();
  for (const inst of insts) {
    const seen = new Set<string>();
    const scope = new Map([...state.args, ...state.env]);
    const words = (...ws: string[]): string[] => ws.map((w) => expandChecked(w, scope, escape, inst, report, seen));
    switch (inst.kind) {
      case 'ENV': {
        const values = inst.pairs.map((p) => ({ key: words(p.key)[0] ?? p.key, value: words(p.value)[0] ?? '' }));
        if (inst.pairs.some((p) => p.noDelim)) report('LegacyKeyValueFormat', inst.location, 'ENV');
        for (const { key, value } of values) {
          if (looksSecret(key)) report('SecretsUsedInArgOrEnv', inst.location, 'ENV', key);
          state.env.set(key, value);
        }
        break;
      }
      case 'LABEL':
        for (const p of inst.pairs) words(p.key, p.value);
        if (inst.pairs.some((p) => p.noDelim)) report('LegacyKeyValueFormat', inst.location, 'LABEL');
        break;
      case 'ARG':
        for (const a of inst.args) {
          if (looksSecret(a.key)) report('SecretsUsedInArgOrEnv', inst.location, 'ARG', a.key);
          const def = a.value === undefined ? undefined : words(a.value)[0];
          const value = ownValue(buildArgs, a.key) ?? def ?? global.values.get(a.key);
          state.args.set(a.key, value ?? '');
        }
        break;
      case 'COPY': case 'ADD': words(...inst.sources, inst.dest); break;
      case 'VOLUME': words(...inst.paths); break;
      case 'USER': words(inst.user); break;
      case 'STOPSIGNAL': words(inst.signal); break;
      case 'EXPOSE':
        for (const port of words(...inst.ports)) {
          if (port.includes(':')) report('ExposeInvalidFormat', inst.location, port);
          const proto = port.split('/')[1];
          if (proto !== undefined && proto !== proto.toLowerCase()) report('ExposeProtoCasing', inst.location, port);
        }
        break;
      case 'WORKDIR': {
        const path = words(inst.path)[0] ?? inst.path;
        if (!path.startsWith('/') && !state.workdirSet) report('WorkdirRelativePath', inst.location, path);
        state.workdirSet = true;
        break;
      }
      case 'SHELL': state.shellSet = true; break;
      case 'MAINTAINER': report('MaintainerDeprecated', inst.location); break;
      case 'CMD': case 'ENTRYPOINT': case 'HEALTHCHECK': {
        const prev = once.get(inst.kind);
        if (prev !== undefined) report('MultipleInstructionsDisallowed', prev, inst.kind);
        once.set(inst.kind, inst.location);
        if (inst.kind !== 'HEALTHCHECK' && inst.form === 'shell' && !state.shellSet) report('JSONArgsRecommended', inst.location, inst.kind);
        break;
      }
      default: break;
    }
  }
}

/** Expand like dispatch does, reporting variables no ARG/ENV defined (once per instruction). */
function expandChecked(word: string, env: Map<string, string>, escape: '\\' | '`', inst: Instruction, report: Report, seen: Set<string>): string {
  let r;
  try {
    r = expandWordWithMatches(word, env, { escape });
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withLocation({ file: inst.location.file, line: inst.location.startLine, endLine: inst.location.endLine, excerpt: inst.original });
    throw e;
  }
  for (const name of r.unmatched) {
    if (seen.has(name)) continue;
    seen.add(name);
    report('UndefinedVar', inst.location, name, suggest(name, [...env.keys()], true));
  }
  return r.result;
}
