/**
 * CLI entry: the one AbortController (SIGINT/SIGTERM abort it, so every I/O path and sandbox
 * unwinds through its `finally`), command dispatch, and the mapping of errors to exit codes.
 */
import { statSync } from 'node:fs';
import { suggest } from '../parser/suggest.js';
import { adoptDeferredCaCerts } from '../registry/tls.js';
import { TsbuildError } from '../util/errors.js';
import { parseArgs, flagBool, type FlagSpec } from './args.js';
import { COMMANDS, type CliIO } from './commands/index.js';
import { exitCodeFor, formatError } from './exit.js';

export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'root', kind: 'string', help: 'store root (default $TSBUILD_ROOT, /var/lib/tsbuild as root)' },
  { name: 'debug', short: 'D', kind: 'boolean', help: 'show stack traces' },
  { name: 'help', short: 'h', kind: 'boolean', help: 'show help' },
];

/** Where the command word is: the first argument that is neither a flag nor a global flag's value. */
function commandWord(argv: string[]): number {
  // Flags before the word are global or build flags (build is the default command); skip their values.
  const takesValue = new Set<string>();
  for (const f of [...GLOBAL_FLAGS, ...(COMMANDS.build?.flags ?? [])]) {
    if (f.kind === 'boolean') continue;
    takesValue.add(`--${f.name}`);
    if (f.short !== undefined) takesValue.add(`-${f.short}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') return -1;
    if (takesValue.has(a)) i++;
    else if (!a.startsWith('-') || a === '-') return i;
  }
  return -1;
}

/** A word that is not a command is a build context when it looks like a path or names a directory. */
function looksLikePath(word: string): boolean {
  return /[/\\.~]/.test(word) || word === '-' || statSync(word, { throwIfNoEntry: false })?.isDirectory() === true;
}

export async function main(argv: string[], io: CliIO): Promise<number> {
  let debug = argv.includes('--debug') || argv.includes('-D');
  try {
    const at = commandWord(argv);
    const word = at >= 0 ? (argv[at] as string) : undefined;
    const withoutWord = at >= 0 ? [...argv.slice(0, at), ...argv.slice(at + 1)] : argv;
    if (argv.length === 0 || (word === undefined && (argv.includes('--help') || argv.includes('-h')))) {
      io.stdout.write(usage());
      return 0;
    }
    if (word === undefined && argv.includes('--version')) return await runCommand('version', [], io);
    if (word === 'help') {
      const topic = withoutWord.find((a) => !a.startsWith('-'));
      if (topic === undefined) {
        io.stdout.write(usage());
        return 0;
      }
      if (COMMANDS[topic] === undefined) throw unknownCommand(topic);
      return await runCommand(topic, ['--help'], io);
    }
    if (word !== undefined && COMMANDS[word] !== undefined) return await runCommand(word, withoutWord, io, (d) => (debug = d));
    // No command word: `tsbuild [OPTIONS] PATH` builds, like `docker build`. A bare word that is not a
    // directory is almost certainly a mistyped command.
    if (word !== undefined && !looksLikePath(word)) throw unknownCommand(word);
    return await runCommand('build', argv, io, (d) => (debug = d));
  } catch (err) {
    // Once interrupted, whatever unwinds (an AbortError, or the abort reason from throwIfAborted) means 130.
    if (io.signal.aborted) {
      io.stderr.write('interrupted\n');
      return 130;
    }
    io.stderr.write(formatError(err, debug));
    return exitCodeFor(err);
  }
}

async function runCommand(name: string, rest: string[], io: CliIO, setDebug: (d: boolean) => void = () => undefined): Promise<number> {
  const command = COMMANDS[name];
  if (command === undefined) throw unknownCommand(name);
  const specs = [...GLOBAL_FLAGS, ...command.flags];
  const args = parseArgs(rest, specs);
  setDebug(flagBool(args, 'debug'));
  if (flagBool(args, 'help')) {
    io.stdout.write(command.help(specs));
    return 0;
  }
  return command.run(args, io);
}

function unknownCommand(word: string): TsbuildError {
  const near = suggest(word, Object.keys(COMMANDS), true);
  return new TsbuildError('USAGE', `unknown command: ${word}`, {
    hint: near !== undefined ? `did you mean "${near}"? (see 'tsbuild --help')` : `see 'tsbuild --help'; to build a directory named ${word}, use ./${word}`,
  });
}

export function usage(): string {
  const names = Object.keys(COMMANDS).sort();
  const width = Math.max(...names.map((n) => n.length)) + 2;
  const rows = names.map((n) => `  ${n.padEnd(width)}${COMMANDS[n]?.summary ?? ''}`);
  const globals = GLOBAL_FLAGS.map((f) => `  ${(f.short !== undefined ? `-${f.short}, --${f.name}` : `    --${f.name}`).padEnd(16)}${f.help}`);
  return [
    'Usage:  tsbuild [OPTIONS] PATH          (same as: tsbuild build [OPTIONS] PATH)',
    '        tsbuild COMMAND [OPTIONS]',
    '',
    'A daemonless OCI image builder and layer toolkit.',
    '',
    'Commands:',
    ...rows,
    '',
    'Global options:',
    ...globals,
    '',
    "Run 'tsbuild COMMAND --help' for more information on a command.",
    '',
  ].join('\n');
}

/** Called by bin/tsbuild. */
export function run(): void {
  adoptDeferredCaCerts();
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++interrupts > 1) process.exit(130);
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const io = {
    stdout: process.stdout,
    stderr: process.stderr,
    // A getter: touching process.stdin sets up a stream (~8 ms), and only load and login read it.
    get stdin(): NodeJS.ReadableStream {
      return process.stdin;
    },
    env: process.env,
    signal: controller.signal,
  };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
