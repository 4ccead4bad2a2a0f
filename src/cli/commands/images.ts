/** Local image commands with docker's output layout: images, history, inspect, tag, rmi. */
import { parseReference } from '../../image/reference.js';
import { TsbuildError } from '../../util/errors.js';
import { flagBool, flagString } from '../args.js';
import { formatBytes } from '../progress/tty.js';
import { ago, command, loadImage, pad, resolveLocal, safeRef, store, type Command } from './shared.js';

export const imageCommands: Record<string, Command> = {
  images: command('List images in the local store', 'images', [], async (args, io) => {
    const s = await store(args, io);
    const rows: string[][] = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
    for (const t of await s.tags.list()) {
      const { manifest, config } = await loadImage(s, t.descriptor.digest);
      const ref = safeRef(t.name) !== undefined ? parseReference(t.name) : undefined;
      const repo = ref !== undefined ? ref.familiar().replace(/[:@].*$/, '') : t.name;
      const size = manifest.layers.reduce((n, l) => n + l.size, 0);
      rows.push([repo, ref?.tag ?? '<none>', manifest.config.digest.slice(7, 19), ago(config.created), formatBytes(size)]);
    }
    const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
    for (const r of rows) io.stdout.write(`${pad(r, widths)}\n`);
    return 0;
  }),
  history: command('Show the history of an image', 'history [--no-trunc] [--format json] IMAGE', [
    { name: 'no-trunc', kind: 'boolean', help: 'do not truncate output' },
    { name: 'format', kind: 'string', help: 'json for one object per line' },
  ], async (args, io) => {
    const s = await store(args, io);
    const local = await resolveLocal(s, args.positionals[0] ?? '');
    const { manifest, config } = await loadImage(s, local.digest);
    const noTrunc = flagBool(args, 'no-trunc');
    let layer = manifest.layers.length - 1;
    const entries = [...(config.history ?? [])].reverse().map((h, i) => {
      const size = h.empty_layer === true ? 0 : (manifest.layers[layer--]?.size ?? 0);
      return { id: i === 0 ? manifest.config.digest : '<missing>', created: h.created, createdBy: h.created_by ?? '', size, comment: h.comment ?? '' };
    });
    if (flagString(args, 'format') === 'json') {
      for (const e of entries) io.stdout.write(`${JSON.stringify({ ID: e.id, CreatedAt: e.created, CreatedBy: e.createdBy, Size: e.size, Comment: e.comment })}\n`);
      return 0;
    }
    const rows = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...entries.map((e) => [
      e.id === '<missing>' || noTrunc ? e.id : e.id.slice(7, 19), ago(e.created),
      noTrunc || e.createdBy.length <= 45 ? e.createdBy : `${e.createdBy.slice(0, 44)}…`, formatBytes(e.size), e.comment,
    ])];
    const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
    for (const r of rows) io.stdout.write(`${pad(r, widths)}\n`);
    return 0;
  }),
  inspect: command('Show an image manifest and config as JSON', 'inspect IMAGE', [], async (args, io) => {
    const s = await store(args, io);
    const local = await resolveLocal(s, args.positionals[0] ?? '');
    const { manifest, config } = await loadImage(s, local.digest);
    io.stdout.write(`${JSON.stringify([{ Id: manifest.config.digest, RepoTags: [local.name], RepoDigests: [], Digest: local.digest, Manifest: manifest, ...config, Config: config.config, Architecture: config.architecture, Os: config.os, Size: manifest.layers.reduce((n, l) => n + l.size, 0) }], null, 4)}\n`);
    return 0;
  }),
  tag: command('Give an image another name', 'tag SOURCE TARGET', [], async (args, io) => {
    const [src, dst] = args.positionals;
    if (src === undefined || dst === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild tag SOURCE TARGET');
    const s = await store(args, io);
    const local = await resolveLocal(s, src);
    const desc = await s.tags.get(local.name);
    if (desc === undefined) throw new TsbuildError('NOT_FOUND', `image ${src} not found`);
    await s.tags.set(parseReference(dst).toString(), desc);
    return 0;
  }),
  rmi: command('Remove image names', 'rmi IMAGE...', [], async (args, io) => {
    const s = await store(args, io);
    for (const name of args.positionals) {
      const local = await resolveLocal(s, name);
      await s.tags.remove(local.name);
      io.stdout.write(`Untagged: ${name}\n`);
    }
    return 0;
  }),
};
