/** `tsbuild diff IMAGE`: per-layer added/modified/deleted files and the bytes later layers waste. */
import { analyzeImage, type FileChange, type LayerAnalysis } from '../../layers/index.js';
import { TsbuildError } from '../../util/errors.js';
import { flagString } from '../args.js';
import { formatBytes } from '../progress/tty.js';
import { command, resolveLocal, store, type CliIO, type Command } from './shared.js';

function printLayer(l: LayerAnalysis, io: CliIO): void {
  io.stdout.write(`Layer ${l.index} ${l.digest} (${formatBytes(l.size)}, wasted ${formatBytes(l.wasted)})\n`);
  if (l.createdBy !== '') io.stdout.write(`  ${l.createdBy}\n`);
  const rows: [string, FileChange[]][] = [['A', l.added], ['M', l.modified], ['D', l.deleted]];
  for (const [mark, files] of rows) {
    for (const f of files) io.stdout.write(`  ${mark} ${formatBytes(f.size).padStart(10)}  ${f.path}\n`);
  }
}

export const diffCommands: Record<string, Command> = {
  diff: command('Show the files each layer of an image adds, changes and deletes', 'diff IMAGE [--layer N] [--format json]', [
    { name: 'layer', kind: 'string', help: 'only this layer (0 = the base-most)' },
    { name: 'format', kind: 'string', help: 'json for one JSON document' },
  ], async (args, io) => {
    const ref = args.positionals[0];
    if (ref === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild diff IMAGE [--layer N] [--format json]');
    const format = flagString(args, 'format');
    if (format !== undefined && format !== 'json') throw new TsbuildError('USAGE', `--format must be json, not ${format}`);
    const s = await store(args, io);
    const analysis = await analyzeImage(s, (await resolveLocal(s, ref)).digest, { signal: io.signal });
    const only = flagString(args, 'layer');
    let layers = analysis.layers;
    if (only !== undefined) {
      const n = Number(only);
      if (!/^\d+$/.test(only) || n >= layers.length) {
        throw new TsbuildError('USAGE', `--layer ${only}: the image has layers 0 to ${layers.length - 1}`);
      }
      layers = layers.filter((l) => l.index === n);
    }
    if (format === 'json') {
      io.stdout.write(`${JSON.stringify({ layers, totalSize: analysis.totalSize, totalWasted: analysis.totalWasted }, null, 2)}\n`);
      return 0;
    }
    for (const l of layers) printLayer(l, io);
    io.stdout.write(`Total: ${formatBytes(analysis.totalSize)} in ${analysis.layers.length} layers, ${formatBytes(analysis.totalWasted)} wasted\n`);
    return 0;
  }),
};
