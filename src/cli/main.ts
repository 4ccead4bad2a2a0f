/**
 * CLI entry: the one AbortController (SIGINT/SIGTERM abort it, so every I/O path and sandbox
 * unwinds through its `finally`), command dispatch, and the mapping of errors to exit codes.
 */
import { isTsbuildError } from '../util/errors.js';
import { parseArgs, flagBool, type FlagSpec } from './args.js';
import { COMMANDS, type CliIO } from './commands/index.js';
import { exitCodeFor, formatError } from './exit.js';

const GLOBAL: FlagSpec[] = [
  { name: 'root', kind: 'string', help: 'store root (default $TSBUILD_ROOT, /var/lib/tsbuild as root)' },
  { name: 'debug', kind: 'boolean', help: 'show stack traces' },
  { name: 'help', short: 'h', kind: 'boolean', help: 'show help' },
];

export async function main(argv: string[], io: CliIO): Promise<number> {
  const first = argv.findIndex((a) => !a.startsWith('-'));
  const name = first >= 0 && COMMANDS[argv[first] as string] !== undefined ? (argv[first] as string) : 'build';
  const rest = first >= 0 && name === argv[first] ? [...argv.slice(0, first), ...argv.slice(first + 1)] : argv;
  const command = COMMANDS[name];
  if (command === undefined) return 2;
  let debug = rest.includes('--debug');
  try {
    if (argv.length === 0 || (argv[0] === 'help')) {
      io.stdout.write(usage());
      return 0;
    }
    const specs = [...GLOBAL, ...command.flags];
    const args = parseArgs(rest, specs);
    debug = flagBool(args, 'debug');
    if (flagBool(args, 'help')) {
      io.stdout.write(command.help(specs));
      return 0;
    }
    return await command.run(args, io);
  } catch (err) {
    if (isTsbuildError(err) && err.code === 'ABORTED' && io.signal.aborted) {
      io.stderr.write('interrupted\n');
      return 130;
    }
    io.stderr.write(formatError(err, debug));
    return exitCodeFor(err);
  }
}

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return `Usage: tsbuild [COMMAND] [OPTIONS]\n\nA daemonless OCI image builder. Without a command, builds (like docker build).\n\nCommands:\n${rows.join('\n')}\n\nRun 'tsbuild COMMAND --help' for a command's options.\n`;
}

/** Called by bin/tsbuild. */
export function run(): void {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++interrupts > 1) process.exit(130);
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`internal error: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
