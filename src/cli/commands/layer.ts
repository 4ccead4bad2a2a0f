/** `tsbuild layer apply|create|ls`: the layer toolkit on plain dirs, tar files and local images. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestFromHash } from '../../image/digest.js';
import { changesToTar, extractLayer, treeChanges } from '../../layers/index.js';
import { isTsbuildError, messageOf, TsbuildError } from '../../util/errors.js';
import { checkOutputFile, writeOutputFile } from '../../util/output-file.js';
import { flagString, type ParsedArgs } from '../args.js';
import { formatBytes } from '../progress/tty.js';
import { command, loadImage, pad, resolveLocal, store, type CliIO, type Command } from './shared.js';

const USAGE = 'layer apply LAYER.tar[.gz|.zst]... DIR | layer create --from LOWER --to UPPER -o OUT.tar | layer ls IMAGE';

async function apply(paths: string[], io: CliIO): Promise<number> {
  const dir = paths.pop();
  if (dir === undefined || paths.length === 0) throw new TsbuildError('USAGE', 'usage: tsbuild layer apply LAYER.tar... DIR');
  for (const file of paths) {
    try {
      const { diffId, entries } = await extractLayer(createReadStream(file, { signal: io.signal }), dir, { mode: 'apply', signal: io.signal });
      io.stdout.write(`${file}: ${entries} entries, ${diffId}\n`);
    } catch (err) {
      if (isTsbuildError(err) && err.code === 'ABORTED') throw err;
      const code = isTsbuildError(err) ? err.code : 'LAYER';
      throw new TsbuildError(code, `layer ${file}: ${messageOf(err)}`, { cause: err, hint: `${dir} may hold part of this layer; nothing outside it was changed` });
    }
  }
  return 0;
}

/** SOURCE_DATE_EPOCH from the environment, validated. */
function sourceDateEpoch(io: CliIO): number | undefined {
  const text = io.env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text)) throw new TsbuildError('USAGE', `SOURCE_DATE_EPOCH must be whole seconds, not ${text}`);
  return Number(text);
}

async function create(args: ParsedArgs, io: CliIO): Promise<number> {
  const from = flagString(args, 'from');
  const to = flagString(args, 'to');
  const out = flagString(args, 'output');
  if (from === undefined || to === undefined || out === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild layer create --from LOWER --to UPPER -o OUT.tar');
  const sde = sourceDateEpoch(io);
  await checkOutputFile(out); // before the tree walk, which can take a while
  const changes = await treeChanges(from, to, { signal: io.signal });
  const tar = changesToTar(to, changes, { signal: io.signal, ...(sde === undefined ? {} : { sourceDateEpoch: sde }) });
  const hash = createHash('sha256');
  let size = 0;
  const hashed = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of tar) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  };
  await writeOutputFile(out, (file) => pipeline(Readable.from(hashed()), file, { signal: io.signal }));
  io.stderr.write(`${changes.length} changes, ${formatBytes(size)} → ${out}\n`);
  io.stdout.write(`${digestFromHash(hash)}\n`);
  return 0;
}

async function list(args: ParsedArgs, ref: string | undefined, io: CliIO): Promise<number> {
  if (ref === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild layer ls IMAGE');
  const s = await store(args, io);
  const { manifest, config } = await loadImage(s, (await resolveLocal(s, ref)).digest);
  const history = (config.history ?? []).filter((h) => h.empty_layer !== true);
  const rows = [['INDEX', 'DIGEST', 'DIFF ID', 'SIZE', 'CREATED BY']];
  manifest.layers.forEach((l, i) => {
    rows.push([String(i), l.digest, config.rootfs.diff_ids[i] ?? '<missing>', formatBytes(l.size), history[i]?.created_by ?? '']);
  });
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const r of rows) io.stdout.write(`${pad(r, widths)}\n`);
  return 0;
}

export const layerCommands: Record<string, Command> = {
  layer: command('Apply, create and list layers', USAGE, [
    { name: 'from', kind: 'string', help: 'layer create: the lower (before) tree' },
    { name: 'to', kind: 'string', help: 'layer create: the upper (after) tree' },
    { name: 'output', short: 'o', kind: 'string', help: 'layer create: the tar to write' },
  ], async (args, io) => {
    const [sub, ...rest] = args.positionals;
    switch (sub) {
      case 'apply':
        return apply(rest, io);
      case 'create':
        return create(args, io);
      case 'ls':
        return list(args, rest[0], io);
      default:
        throw new TsbuildError('USAGE', `unknown layer subcommand ${JSON.stringify(sub ?? '')}`, { hint: `usage: tsbuild ${USAGE}` });
    }
  }),
};
