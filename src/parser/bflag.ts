/** BuildKit's BFlags: per-instruction flag declaration and validation (instructions/bflag.go). */
import { suggest } from './suggest.js';

export class FlagError extends Error {
  /** `flag`: the flag the error is about, when the message does not name it (mount options). */
  constructor(message: string, readonly suggestion?: string, readonly flag?: string) {
    super(message);
  }
}

type FlagType = 'bool' | 'string' | 'strings';

interface Flag {
  type: FlagType;
  value: string;
  values: string[];
}

export class BFlags {
  private readonly defs = new Map<string, Flag>();
  readonly used = new Set<string>();

  constructor(private readonly args: readonly string[]) {}

  bool(name: string, def = false): this { this.defs.set(name, { type: 'bool', value: def ? 'true' : 'false', values: [] }); return this; }
  string(name: string, def = ''): this { this.defs.set(name, { type: 'string', value: def, values: [] }); return this; }
  strings(name: string): this { this.defs.set(name, { type: 'strings', value: '', values: [] }); return this; }

  /** Validate the flags given against the declared ones. Throws FlagError with BuildKit's message. */
  parse(): this {
    for (const a of this.args) {
      if (!a.startsWith('--')) throw new FlagError(`arg should start with -- : ${a}`);
      if (a === '--') return this;
      let name = a.slice(2);
      let value = '';
      const eq = name.indexOf('=');
      if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
      const flag = this.defs.get(name);
      if (flag === undefined) throw new FlagError(`unknown flag: ${name}`, suggest(name, [...this.defs.keys()], true));
      if (this.used.has(name) && flag.type !== 'strings') throw new FlagError(`duplicate flag specified: ${name}`);
      this.used.add(name);
      if (flag.type === 'bool') {
        if (eq >= 0 && value === '') throw new FlagError(`missing a value on flag: ${name}`);
        const lower = value.toLowerCase();
        if (lower === '') flag.value = 'true';
        else if (lower === 'true' || lower === 'false') flag.value = lower;
        else throw new FlagError(`expecting boolean value for flag ${name}, not: ${value}`);
      } else {
        if (eq < 0) throw new FlagError(`missing a value on flag: ${name}`);
        if (flag.type === 'string') flag.value = value;
        else flag.values.push(value);
      }
    }
    return this;
  }

  get(name: string): string { return this.defs.get(name)?.value ?? ''; }
  isTrue(name: string): boolean { return this.get(name) === 'true'; }
  values(name: string): string[] { return this.defs.get(name)?.values ?? []; }
  isUsed(name: string): boolean { return this.used.has(name); }
}
