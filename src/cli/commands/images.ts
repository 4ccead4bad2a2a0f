/** Local image commands with docker's output layout: images, history, inspect, tag, rmi. */
import { imageHistory, inspectImage, listImages } from '../../api/index.js';
import { parseReference } from '../../image/reference.js';
import { TsbuildError } from '../../util/errors.js';
import { flagBool, flagString } from '../args.js';
import { tabwrite } from '../format/table.js';
import { renderTemplate } from '../format/template.js';
import { createdSince, ellipsis, humanSize } from '../format/units.js';
import { command, resolveLocal, store, type Command } from './shared.js';

/** Go's time.Time.String() in UTC, which docker prints as CreatedAt. */
function goTime(iso: string | undefined): string {
  if (iso === undefined) return '0001-01-01 00:00:00 +0000 UTC';
  return `${new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} +0000 UTC`;
}

function rfc3339(iso: string | undefined): string {
  return iso === undefined ? '0001-01-01T00:00:00Z' : new Date(iso).toISOString().replace(/\.\d+Z$/, 'Z');
}

function needImage(positionals: string[], usage: string): string {
  const ref = positionals[0];
  if (ref === undefined) throw new TsbuildError('USAGE', `"${usage.split(' ')[0] ?? ''}" requires an image: tsbuild ${usage}`);
  return ref;
}

export const imageCommands: Record<string, Command> = {
  images: command('List images in the local store', 'images [-q] [--no-trunc] [--format table|json|TEMPLATE]', [
    { name: 'quiet', short: 'q', kind: 'boolean', help: 'only show image IDs' },
    { name: 'no-trunc', kind: 'boolean', help: "don't truncate output" },
    { name: 'format', kind: 'string', help: "'json', 'table' or a Go template ({{.Repository}}:{{.Tag}})" },
  ], async (args, io) => {
    const s = await store(args, io);
    const noTrunc = flagBool(args, 'no-trunc');
    const rows = (await listImages(s)).map((i) => ({
      Containers: 'N/A', CreatedAt: goTime(i.created), CreatedSince: createdSince(i.created), Digest: '<none>',
      ID: noTrunc ? i.id : i.id.slice(7, 19), Repository: i.repository, SharedSize: 'N/A', Size: humanSize(i.size), Tag: i.tag,
      UniqueSize: 'N/A', VirtualSize: humanSize(i.size),
    }));
    if (flagBool(args, 'quiet')) {
      for (const id of new Set(rows.map((r) => r.ID))) io.stdout.write(`${id}\n`);
      return 0;
    }
    const format = flagString(args, 'format') ?? 'table';
    if (format === 'json') for (const r of rows) io.stdout.write(`${JSON.stringify(r)}\n`);
    else if (format !== 'table') for (const r of rows) io.stdout.write(`${renderTemplate(format, r)}\n`);
    else io.stdout.write(tabwrite([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], ...rows.map((r) => [r.Repository, r.Tag, r.ID, r.CreatedSince, r.Size])]));
    return 0;
  }),
  history: command('Show the history of an image', 'history [--no-trunc] [-q] [-H=false] [--format json|TEMPLATE] IMAGE', [
    { name: 'no-trunc', kind: 'boolean', help: "don't truncate output" },
    { name: 'quiet', short: 'q', kind: 'boolean', help: 'only show image IDs' },
    { name: 'human', short: 'H', kind: 'boolean', help: 'human readable sizes and dates', default: 'true' },
    { name: 'format', kind: 'string', help: "'json', 'table' or a Go template ({{.CreatedBy}})" },
  ], async (args, io) => {
    const s = await store(args, io);
    const noTrunc = flagBool(args, 'no-trunc');
    const human = args.flags.get('human')?.[0] !== 'false';
    const entries = (await imageHistory(s, needImage(args.positionals, 'history IMAGE'))).map((e) => {
      const createdBy = e.createdBy.replace(/\t/g, ' ');
      return {
        Comment: e.comment,
        CreatedAt: rfc3339(e.created),
        CreatedBy: noTrunc ? createdBy : ellipsis(createdBy, 45),
        CreatedSince: human ? createdSince(e.created) : rfc3339(e.created),
        ID: e.id === '<missing>' || noTrunc ? e.id : e.id.slice(7, 19),
        Size: human ? humanSize(e.size) : String(e.size),
      };
    });
    if (flagBool(args, 'quiet')) {
      for (const e of entries) io.stdout.write(`${e.ID}\n`);
      return 0;
    }
    const format = flagString(args, 'format') ?? 'table';
    if (format === 'json') for (const e of entries) io.stdout.write(`${JSON.stringify(e)}\n`);
    else if (format !== 'table') for (const e of entries) io.stdout.write(`${renderTemplate(format, e)}\n`);
    else io.stdout.write(tabwrite([['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], ...entries.map((e) => [e.ID, e.CreatedSince, e.CreatedBy, e.Size, e.Comment])]));
    return 0;
  }),
  inspect: command('Show details of images (docker image inspect JSON, plus the manifest)', 'inspect [-f TEMPLATE] IMAGE...', [
    { name: 'format', short: 'f', kind: 'string', help: 'Go template, e.g. {{.Id}} or {{json .Config}}' },
  ], async (args, io) => {
    if (args.positionals.length === 0) needImage(args.positionals, 'inspect IMAGE...');
    const s = await store(args, io);
    const format = flagString(args, 'format');
    const all = [];
    for (const ref of args.positionals) all.push(await inspectImage(s, ref));
    if (format !== undefined && format !== 'json') for (const i of all) io.stdout.write(`${renderTemplate(format, i)}\n`);
    else io.stdout.write(`${JSON.stringify(all, null, 4)}\n`);
    return 0;
  }),
  tag: command('Give an image another name', 'tag SOURCE TARGET', [], async (args, io) => {
    const [src, dst] = args.positionals;
    if (src === undefined || dst === undefined) throw new TsbuildError('USAGE', '"tag" requires exactly 2 arguments: tsbuild tag SOURCE TARGET');
    const s = await store(args, io);
    const local = await resolveLocal(s, src);
    const desc = await s.tags.get(local.name);
    if (desc === undefined) throw new TsbuildError('NOT_FOUND', `image ${src} not found`);
    await s.tags.set(parseReference(dst).toString(), desc, { signal: io.signal });
    return 0;
  }),
  rmi: command('Remove image names', 'rmi IMAGE...', [], async (args, io) => {
    if (args.positionals.length === 0) throw new TsbuildError('USAGE', '"rmi" requires at least 1 argument: tsbuild rmi IMAGE...');
    const s = await store(args, io);
    for (const name of args.positionals) {
      const local = await resolveLocal(s, name);
      await s.tags.remove(local.name, { signal: io.signal });
      io.stdout.write(`Untagged: ${parseReference(local.name).familiar()}\n`);
    }
    return 0;
  }),
};
