/**
 * Docker-style flag parsing: `-t x`, `--tag x`, `--tag=x`, repeatable flags, boolean flags,
 * combined short booleans are not supported (docker build has none that matter). `--` ends flags.
 */
import { TsbuildError } from '../util/errors.js';
import { ownValue } from '../util/own.js';

export interface FlagSpec {
  name: string;
  short?: string;
  kind: 'string' | 'boolean' | 'list';
  help: string;
  default?: string;
}

export interface ParsedArgs {
  flags: Map<string, string[]>;
  positionals: string[];
}

export function parseArgs(argv: string[], specs: FlagSpec[]): ParsedArgs {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(`--${s.name}`, s);
    if (s.short !== undefined) byName.set(`-${s.short}`, s);
  }
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(key);
    if (spec === undefined) throw new TsbuildError('USAGE', `unknown flag: ${key}`, { hint: 'see --help' });
    let value: string;
    if (spec.kind === 'boolean') {
      value = eq > 0 ? arg.slice(eq + 1) : 'true';
      if (value !== 'true' && value !== 'false') throw new TsbuildError('USAGE', `flag ${key} takes true or false, not ${value}`);
    } else if (eq > 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new TsbuildError('USAGE', `flag needs an argument: ${key}`);
      value = next;
      i++;
    }
    const list = flags.get(spec.name) ?? [];
    if (spec.kind === 'list') list.push(value);
    else list.splice(0, list.length, value);
    flags.set(spec.name, list);
  }
  return { flags, positionals };
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.[0];
}

export function flagBool(args: ParsedArgs, name: string): boolean {
  return args.flags.get(name)?.[0] === 'true';
}

export function flagList(args: ParsedArgs, name: string): string[] {
  return args.flags.get(name) ?? [];
}

/** `KEY=VALUE` pairs; a bare `KEY` takes its value from the environment, as docker does. */
export function keyValues(items: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  // A Map, then own properties: a key such as __proto__ must stay an ordinary key.
  const out = new Map<string, string>();
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 0) {
      const v = ownValue(env, item);
      if (v !== undefined) out.set(item, v);
    } else out.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return Object.fromEntries(out);
}

export function formatHelp(usage: string, description: string, specs: FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names = `${s.short !== undefined ? `-${s.short}, ` : '    '}--${s.name}${s.kind === 'boolean' ? '' : s.kind === 'list' ? ' list' : ' string'}`;
    return `  ${names.padEnd(30)} ${s.help}${s.default !== undefined ? ` (default ${s.default})` : ''}`;
  });
  return `Usage: ${usage}\n\n${description}\n\nOptions:\n${rows.join('\n')}\n`;
}
