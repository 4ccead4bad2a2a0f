/**
 * AST node → typed instruction, one small function per instruction (BuildKit instructions/parse.go).
 * Throws FlagError / InstructionError; parse.ts adds file and line.
 */
import { type AstNode, decodeGoBytes } from '../ast.js';
import { BFlags, FlagError } from '../bflag.js';
import { parseGoDuration } from '../gostr.js';
import { chompHeredocContent, parseHeredocWord } from '../heredoc.js';
import { suggest } from '../suggest.js';
import type {
  AddInstruction, ArgInstruction, CommandLine, CopyInstruction, Heredoc, Instruction, KeyValue, Location,
} from '../types.js';
import { byCodePoint } from '../../util/order.js';
import { parseRunMount } from './mount.js';

export class InstructionError extends Error {
  constructor(message: string, readonly suggestion?: string) {
    super(message);
  }
}

const allInstructions = ['add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir'];

const atLeastOne = (c: string): InstructionError => new InstructionError(`${c} requires at least one argument`);
const exactlyOne = (c: string): InstructionError => new InstructionError(`${c} requires exactly one argument`);
const noDest = (c: string): InstructionError => new InstructionError(`${c} requires at least two arguments, but only one was provided. Destination could not be determined.`);

/** nodeArgs(): ONBUILD flattens to [trigger keyword, ...trigger args]. */
function nodeArgs(node: AstNode): string[] {
  return node.sub === undefined ? [...node.next] : [node.sub.value, ...nodeArgs(node.sub)];
}

function toHeredoc(h: AstNode['heredocs'][number]): Heredoc {
  return {
    name: h.name, rawContent: h.content, content: h.chomp ? chompHeredocContent(h.content) : h.content,
    expand: h.expand, chomp: h.chomp, fileDescriptor: h.fileDescriptor,
  };
}

function commandLine(node: AstNode, args: string[]): CommandLine {
  if (node.json) return { form: 'exec', command: args };
  return { form: 'shell', command: args.join(' ') };
}

function kvps(args: string[], cmd: string): KeyValue[] {
  if (args.length === 0) throw atLeastOne(cmd);
  if (args.length % 3 !== 0) throw new InstructionError(`Bad input to ${cmd}, too many arguments`);
  const out: KeyValue[] = [];
  for (let j = 0; j < args.length; j += 3) {
    const key = args[j] as string;
    if (key === '') throw new InstructionError(`${cmd} names can not be blank`);
    out.push({ key, value: args[j + 1] as string, noDelim: args[j + 2] === '' });
  }
  return out;
}

function sourcesAndDest(node: AstNode, args: string[], cmd: string): { sources: string[]; dest: string; heredocs: Heredoc[] } {
  const dest = args[args.length - 1] as string;
  if (parseHeredocWord(dest) !== undefined) throw new InstructionError(`${cmd} cannot accept a heredoc as a destination`);
  const byName = new Map(node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const src of args.slice(0, -1)) {
    const h = parseHeredocWord(src);
    if (h === undefined) { sources.push(src); continue; }
    const body = byName.get(h.name)?.content ?? '';
    heredocs.push(toHeredoc({ ...h, content: body }));
  }
  return { sources, dest, heredocs };
}

function optInterval(value: string, name: string): string | undefined {
  if (value === '') return undefined;
  let ns: number;
  try {
    ns = parseGoDuration(value);
  } catch (err) {
    throw new InstructionError((err as Error).message);
  }
  if (ns !== 0 && ns < 1e6) throw new InstructionError(`Interval "${name}" cannot be less than 1ms`);
  return value;
}

/** Typed ONBUILD trigger; common fields are filled by the caller. */
type Body = { [K in Instruction['kind']]: Omit<Extract<Instruction, { kind: K }>, 'location' | 'original' | 'flags'> }[Instruction['kind']];

export function parseInstruction(node: AstNode, location: Location): Instruction {
  const flags = node.flags.map(decodeGoBytes);
  const body = parseBody(node, flags, location);
  return { ...body, location, original: node.original, flags } as Instruction;
}

function parseBody(node: AstNode, rawFlags: string[], location: Location): Body {
  const args = nodeArgs(node);
  const flags = new BFlags(rawFlags);
  const cmd = node.value.toLowerCase();
  switch (cmd) {
    case 'env':
      flags.parse();
      return { kind: 'ENV', pairs: kvps(args, 'ENV') };
    case 'label':
      flags.parse();
      return { kind: 'LABEL', pairs: kvps(args, 'LABEL') };
    case 'maintainer':
      if (args.length !== 1) throw exactlyOne('MAINTAINER');
      flags.parse();
      return { kind: 'MAINTAINER', name: args[0] as string };
    case 'add': return parseAdd(node, args, flags);
    case 'copy': return parseCopy(node, args, flags);
    case 'from': {
      let stageName: string | undefined;
      if (args.length === 3 && (args[1] as string).toLowerCase() === 'as') {
        stageName = (args[2] as string).toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) throw new InstructionError(`invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
      } else if (args.length !== 1) {
        throw new InstructionError('FROM requires either one or three arguments');
      }
      flags.string('platform').parse();
      return {
        kind: 'FROM', image: args[0] as string,
        ...(stageName === undefined ? {} : { stageName }),
        ...(flags.isUsed('platform') ? { platform: flags.get('platform') } : {}),
      };
    }
    case 'onbuild': {
      if (args.length === 0 || node.sub === undefined) throw atLeastOne('ONBUILD');
      flags.parse();
      const trigger = (args[0] as string).trim().toUpperCase();
      if (trigger === 'ONBUILD') throw new InstructionError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new InstructionError(`${trigger} isn't allowed as an ONBUILD trigger`);
      let expression = node.original.replace(/^[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*/i, '');
      for (const h of node.heredocs) expression += '\n' + h.content + h.name;
      const sub = { ...node.sub, heredocs: node.heredocs };
      return { kind: 'ONBUILD', expression, instruction: parseInstruction(sub, location) };
    }
    case 'workdir':
      if (args.length !== 1) throw exactlyOne('WORKDIR');
      flags.parse();
      return { kind: 'WORKDIR', path: args[0] as string };
    case 'run': return parseRun(node, args, flags);
    case 'cmd':
      flags.parse();
      return { kind: 'CMD', ...commandLine(node, args) };
    case 'entrypoint':
      flags.parse();
      return { kind: 'ENTRYPOINT', ...commandLine(node, args) };
    case 'healthcheck': return parseHealthcheck(node, args, flags);
    case 'expose':
      if (args.length === 0) throw atLeastOne('EXPOSE');
      flags.parse();
      return { kind: 'EXPOSE', ports: [...args].sort(byCodePoint) };
    case 'user':
      if (args.length !== 1) throw exactlyOne('USER');
      flags.parse();
      return { kind: 'USER', user: args[0] as string };
    case 'volume': {
      if (args.length === 0) throw atLeastOne('VOLUME');
      flags.parse();
      const paths = args.map((v) => v.trim());
      if (paths.some((p) => p === '')) throw new InstructionError('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', paths };
    }
    case 'stopsignal':
      // BuildKit never validates STOPSIGNAL's flags.
      if (args.length !== 1) throw exactlyOne('STOPSIGNAL');
      return { kind: 'STOPSIGNAL', signal: args[0] as string };
    case 'arg': return parseArg(args, flags);
    case 'shell':
      flags.parse();
      if (args.length === 0) throw atLeastOne('SHELL');
      if (!node.json) throw new InstructionError('SHELL requires the arguments to be in JSON form');
      return { kind: 'SHELL', form: 'exec', command: args };
    default:
      throw new InstructionError(`unknown instruction: ${node.value}`, suggest(node.value, allInstructions, false));
  }
}

function parseArg(args: string[], flags: BFlags): Omit<ArgInstruction, 'location' | 'original' | 'flags'> {
  if (args.length < 1) throw atLeastOne('ARG');
  flags.parse();
  return {
    kind: 'ARG',
    args: args.map((a) => {
      const eq = a.indexOf('=');
      if (eq < 0) return { key: a };
      if (eq === 0) throw new InstructionError('ARG names can not be blank');
      return { key: a.slice(0, eq), value: a.slice(eq + 1) };
    }),
  };
}

function parseAdd(node: AstNode, args: string[], flags: BFlags): Omit<AddInstruction, 'location' | 'original' | 'flags'> {
  if (args.length < 2) throw noDest('ADD');
  flags.strings('exclude').string('chown').string('chmod').bool('link').bool('keep-git-dir').string('checksum').bool('unpack').parse();
  return {
    kind: 'ADD', ...sourcesAndDest(node, args, 'ADD'), exclude: flags.values('exclude'),
    ...(flags.isUsed('chown') ? { chown: flags.get('chown') } : {}),
    ...(flags.isUsed('chmod') ? { chmod: flags.get('chmod') } : {}),
    ...(flags.isUsed('checksum') ? { checksum: flags.get('checksum') } : {}),
    ...(flags.isUsed('link') ? { link: flags.isTrue('link') } : {}),
    ...(flags.isUsed('keep-git-dir') ? { keepGitDir: flags.isTrue('keep-git-dir') } : {}),
    ...(flags.isUsed('unpack') ? { unpack: flags.isTrue('unpack') } : {}),
  };
}

function parseCopy(node: AstNode, args: string[], flags: BFlags): Omit<CopyInstruction, 'location' | 'original' | 'flags'> {
  if (args.length < 2) throw noDest('COPY');
  flags.strings('exclude').bool('parents').string('chown').string('from').string('chmod').bool('link').parse();
  return {
    kind: 'COPY', ...sourcesAndDest(node, args, 'COPY'), exclude: flags.values('exclude'),
    ...(flags.isUsed('from') ? { from: flags.get('from') } : {}),
    ...(flags.isUsed('chown') ? { chown: flags.get('chown') } : {}),
    ...(flags.isUsed('chmod') ? { chmod: flags.get('chmod') } : {}),
    ...(flags.isUsed('link') ? { link: flags.isTrue('link') } : {}),
    ...(flags.isUsed('parents') ? { parents: flags.isTrue('parents') } : {}),
  };
}

function parseRun(node: AstNode, args: string[], flags: BFlags): Body {
  flags.strings('mount').string('network', 'default').string('security', 'sandbox').parse();
  const network = flags.get('network');
  if (network !== 'default' && network !== 'none' && network !== 'host') throw new FlagError(`unsupported network mode "${network}"`);
  const security = flags.get('security');
  if (security !== 'sandbox' && security !== 'insecure') throw new FlagError(`unsupported security mode "${security}"`);
  return {
    kind: 'RUN', ...commandLine(node, args), heredocs: node.heredocs.map(toHeredoc),
    mounts: flags.values('mount').map(mountOf), network, security,
  };
}

function mountOf(raw: string): ReturnType<typeof parseRunMount> {
  try {
    return parseRunMount(raw);
  } catch (err) {
    if (err instanceof FlagError && err.flag === undefined) throw new FlagError(err.message, err.suggestion, 'mount');
    throw err;
  }
}

function parseHealthcheck(node: AstNode, args: string[], flags: BFlags): Body {
  if (args.length === 0) throw atLeastOne('HEALTHCHECK');
  const typ = (args[0] as string).toUpperCase();
  const rest = args.slice(1);
  if (typ === 'NONE') {
    if (rest.length !== 0) throw new InstructionError('HEALTHCHECK NONE takes no arguments');
    return { kind: 'HEALTHCHECK', test: 'NONE' };
  }
  flags.string('interval').string('timeout').string('start-period').string('start-interval').string('retries').parse();
  if (typ !== 'CMD') throw new InstructionError(`Unknown type "${typ}" in HEALTHCHECK (try CMD)`);
  if (rest.length === 0) throw new InstructionError('Missing command after HEALTHCHECK CMD');
  const out: Body & { kind: 'HEALTHCHECK' } = { kind: 'HEALTHCHECK', test: commandLine(node, rest) };
  const set = (key: 'interval' | 'timeout' | 'startPeriod' | 'startInterval', flag: string): void => {
    const v = optInterval(flags.get(flag), flag);
    if (v !== undefined) out[key] = v;
  };
  set('interval', 'interval');
  set('timeout', 'timeout');
  set('startPeriod', 'start-period');
  set('startInterval', 'start-interval');
  const retries = flags.get('retries');
  if (retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2147483647) throw new InstructionError(`strconv.ParseInt: parsing "${retries}": invalid syntax`);
    const n = Number(retries);
    if (n < 0) throw new InstructionError(`--retries cannot be negative (${n})`);
    out.retries = n;
  }
  return out;
}
