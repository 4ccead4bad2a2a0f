/** Store upkeep and tooling: prune, parse, version. */
import { readDockerfile } from '../../builder/ignore.js';
import { dumpBuildkit, parseDockerfile } from '../../parser/index.js';
import { prune, verifyStore } from '../../store/index.js';
import { TsbuildError } from '../../util/errors.js';
import { flagBool, flagString } from '../args.js';
import { formatBytes } from '../progress/tty.js';
import { command, store, type Command } from './shared.js';

export const maintenanceCommands: Record<string, Command> = {
  prune: command('Remove blobs and snapshots no tag or cache entry keeps', 'prune [--verify]', [
    { name: 'verify', kind: 'boolean', help: 'only verify the store' },
    { name: 'all', short: 'a', kind: 'boolean', help: 'also drop the build cache' },
  ], async (args, io) => {
    const s = await store(args, io);
    if (flagBool(args, 'verify')) {
      const v = await verifyStore(s);
      for (const p of v.problems) io.stdout.write(`${p}\n`);
      io.stdout.write(v.ok ? 'store verified: no problems\n' : `${v.problems.length} problems\n`);
      return v.ok ? 0 : 6;
    }
    const r = await prune(s, { keepCache: !flagBool(args, 'all') });
    io.stdout.write(`Deleted ${r.removedBlobs} blobs, ${r.removedSnapshots} snapshots\nTotal reclaimed space: ${formatBytes(r.bytesFreed)}\n`);
    return 0;
  }),
  parse: command('Parse a Dockerfile and print it', 'parse [--format json|buildkit] [-f FILE]', [
    { name: 'file', short: 'f', kind: 'string', help: 'Dockerfile path', default: 'Dockerfile' },
    { name: 'format', kind: 'string', help: 'json or buildkit', default: 'json' },
  ], async (args, io) => {
    const format = flagString(args, 'format') ?? 'json';
    if (format !== 'json' && format !== 'buildkit') throw new TsbuildError('USAGE', `unknown format ${format}`, { hint: 'use --format json or --format buildkit' });
    const file = flagString(args, 'file') ?? args.positionals[0] ?? 'Dockerfile';
    const text = await readDockerfile(file, { signal: io.signal });
    if (format === 'buildkit') io.stdout.write(dumpBuildkit(text));
    else io.stdout.write(`${JSON.stringify(parseDockerfile(text, { file }), null, 2)}\n`);
    return 0;
  }),
  version: command('Print the version', 'version', [], (_args, io) => {
    io.stdout.write('tsbuild 0.1.0\n');
    return Promise.resolve(0);
  }),
};
