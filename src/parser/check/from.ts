/** FROM-line rules: global ARG scope, stage names, --platform, base names from ARG defaults. */
import { DockerfileError } from '../errors.js';
import { expandWordWithMatches } from '../shell/index.js';
import { suggest } from '../suggest.js';
import type { Dockerfile, FromInstruction, Location, Stage } from '../types.js';
import type { Report } from './index.js';
import { isValidBaseName } from './rules.js';
import { ownValue } from '../../util/own.js';

const PREDEFINED = ['BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT'];
// Values only matter for base-name validity; any well-formed platform does.
const PREDEFINED_VALUES: Record<string, string> = {
  BUILDPLATFORM: 'linux/amd64', BUILDOS: 'linux', BUILDARCH: 'amd64', BUILDVARIANT: '',
  TARGETPLATFORM: 'linux/amd64', TARGETOS: 'linux', TARGETARCH: 'amd64', TARGETVARIANT: '',
};
const RESERVED = new Set(['scratch', 'context']);

export interface GlobalScope {
  /** Meta ARG values (build args win); undefined = declared without a value. */
  values: Map<string, string | undefined>;
  /** For each stage, the earlier stage it builds FROM. */
  parentStage: (number | undefined)[];
  /** For each stage, its base name after expansion. */
  baseNames: string[];
}

let escapeToken: '\\' | '`' = '\\';

function expand(word: string, env: Map<string, string>, from: { location: Location; original: string }): { result: string; unmatched: Set<string> } {
  try {
    return expandWordWithMatches(word, env, { escape: escapeToken });
  } catch (e) {
    if (e instanceof DockerfileError) throw e.withLocation({ file: from.location.file, line: from.location.startLine, excerpt: from.original });
    throw e;
  }
}

/** `FROM [--flags] image [AS name]` keywords as written (the typed instruction lower-cases the name). */
function fromWords(from: FromInstruction): { fromKw: string; asKw?: string; rawName?: string } {
  const words = from.original.trim().split(/[\t\v\f\r ]+/);
  const fromKw = words[0] ?? 'FROM';
  const n = words.length;
  if (from.stageName === undefined || n < 4) return { fromKw };
  return { fromKw, asKw: words[n - 2] as string, rawName: words[n - 1] as string };
}

export function checkFrom(df: Dockerfile, buildArgs: Record<string, string>, report: Report): GlobalScope {
  escapeToken = df.directives.escape;
  const values = new Map<string, string | undefined>();
  const env = new Map(Object.entries(PREDEFINED_VALUES));
  const defaults = new Map(Object.entries(PREDEFINED_VALUES));
  for (const inst of df.metaArgs) {
    for (const a of inst.args) {
      const def = a.value === undefined ? undefined : expand(a.value, defaults, inst).result;
      const value = ownValue(buildArgs, a.key) ?? def;
      values.set(a.key, value);
      if (value !== undefined) env.set(a.key, value);
      if (def !== undefined) defaults.set(a.key, def);
      else defaults.delete(a.key);
    }
  }
  const declared = [...values.keys(), ...PREDEFINED];
  const names = new Map<string, number>();
  const parentStage: (number | undefined)[] = [];
  const baseNames: string[] = [];
  for (const st of df.stages) {
    const from = st.from;
    const base = expand(from.image, env, from);
    for (const v of base.unmatched) {
      if (!declared.includes(v)) report('UndefinedArgInFrom', from.location, v, suggest(v, declared, true));
    }
    if (from.image.includes('$')) {
      const byDefault = expand(from.image, defaults, from).result;
      if (!names.has(byDefault.toLowerCase()) && (byDefault === '' || !isValidBaseName(byDefault))) report('InvalidDefaultArgInFrom', from.location, from.image);
    }
    parentStage.push(names.get(base.result.toLowerCase()));
    baseNames.push(base.result);
    checkPlatform(st, env, declared, report);
    checkName(st, names, report);
    if (st.name !== undefined) names.set(st.name, st.index);
  }
  return { values, parentStage, baseNames };
}

function checkPlatform(st: Stage, env: Map<string, string>, declared: string[], report: Report): void {
  const p = st.from.platform;
  if (p === undefined) return;
  for (const v of expand(p, env, st.from).unmatched) {
    if (!declared.includes(v)) report('UndefinedArgInFrom', st.from.location, v, suggest(v, declared, true));
  }
  if (p === '$TARGETPLATFORM' || p === '${TARGETPLATFORM}') report('RedundantTargetPlatform', st.from.location, p);
  if (!p.includes('$')) {
    // A stage named after its platform (`AS build-arm64`) is the intended use of a constant.
    const name = (st.name ?? '').toLowerCase();
    if (!p.toLowerCase().split('/').some((part) => part !== '' && name.includes(part))) report('FromPlatformFlagConstDisallowed', st.from.location, p);
  }
}

function checkName(st: Stage, names: Map<string, number>, report: Report): void {
  const { fromKw, asKw, rawName } = fromWords(st.from);
  if (st.name === undefined || asKw === undefined || rawName === undefined) return;
  if (rawName !== rawName.toLowerCase()) report('StageNameCasing', st.from.location, rawName);
  const fromUpper = fromKw === fromKw.toUpperCase();
  const fromLower = fromKw === fromKw.toLowerCase();
  if ((fromUpper && asKw !== asKw.toUpperCase()) || (fromLower && asKw !== asKw.toLowerCase())) report('FromAsCasing', st.from.location, fromKw, asKw);
  if (RESERVED.has(st.name)) report('ReservedStageName', st.from.location, st.name);
  if (names.has(st.name)) report('DuplicateStageName', st.from.location, st.name);
}
