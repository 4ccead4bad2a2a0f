/** `tsbuild build`: docker build's flags mapped onto the builder, then the requested outputs. */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { build } from '../../builder/execute.js';
import { parsePlatform } from '../../builder/plan-platform.js';
import type { BuildEvent } from '../../builder/events.js';
import type { Digest } from '../../image/index.js';
import { parseReference } from '../../image/reference.js';
import { exportDockerArchive, exportOciArchive } from '../../layers/index.js';
import type { Store } from '../../store/index.js';
import { TsbuildError } from '../../util/errors.js';
import { flagBool, flagList, flagString, keyValues, type FlagSpec, type ParsedArgs } from '../args.js';
import { jsonRenderer, plainRenderer } from '../progress/plain.js';
import { ttyRenderer } from '../progress/tty.js';
import { command, csvKeyValues, parseBytes, registryClient, store, type CliIO, type Command } from './shared.js';
import { pushRef } from './transfer.js';

const BUILD_FLAGS: FlagSpec[] = [
  { name: 'tag', short: 't', kind: 'list', help: 'name and optionally a tag (name:tag); repeatable' },
  { name: 'file', short: 'f', kind: 'string', help: 'Dockerfile path (default CONTEXT/Dockerfile)' },
  { name: 'build-arg', kind: 'list', help: 'build-time variable KEY=VALUE' },
  { name: 'target', kind: 'string', help: 'stage to build' },
  { name: 'no-cache', kind: 'boolean', help: 'do not use the build cache' },
  { name: 'no-cache-filter', kind: 'list', help: 'do not use the cache for these stages' },
  { name: 'pull', kind: 'boolean', help: 'always pull base images' },
  { name: 'label', kind: 'list', help: 'image label KEY=VALUE' },
  { name: 'progress', kind: 'string', help: 'auto, tty, plain, json or quiet', default: 'auto' },
  { name: 'output', short: 'o', kind: 'list', help: 'type=oci|docker,dest=PATH' },
  { name: 'push', kind: 'boolean', help: 'push the tagged image after the build' },
  { name: 'iidfile', kind: 'string', help: 'write the image ID to this file' },
  { name: 'metadata-file', kind: 'string', help: 'write build metadata (JSON) to this file' },
  { name: 'network', kind: 'string', help: 'RUN network: host (default) or none' },
  { name: 'memory', short: 'm', kind: 'string', help: 'RUN memory limit (e.g. 512m)' },
  { name: 'cpus', kind: 'string', help: 'RUN CPU limit' },
  { name: 'pids-limit', kind: 'string', help: 'RUN process limit' },
  { name: 'secret', kind: 'list', help: 'secret for RUN --mount=type=secret: id=ID,src=FILE' },
  { name: 'platform', kind: 'string', help: 'target platform (linux/amd64)' },
  { name: 'explain-cache', kind: 'boolean', help: 'say why each step missed the cache' },
  { name: 'insecure-registry', kind: 'list', help: 'registry reachable over plain HTTP' },
  { name: 'quiet', short: 'q', kind: 'boolean', help: 'print only the image ID' },
];

async function buildCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  const context = args.positionals[0];
  if (context === undefined) throw new TsbuildError('USAGE', 'build needs a context directory: tsbuild build [OPTIONS] PATH');
  const s = await store(args, io);
  const quiet = flagBool(args, 'quiet') || flagString(args, 'progress') === 'quiet';
  let mode = quiet ? 'quiet' : (flagString(args, 'progress') ?? 'auto');
  if (mode === 'auto') mode = io.stderr.isTTY === true && io.env.CI === undefined ? 'tty' : 'plain';
  const write = (t: string): void => void io.stderr.write(t);
  let finish = (): void => undefined;
  let onEvent: (e: BuildEvent) => void = () => undefined;
  if (mode === 'plain') onEvent = plainRenderer(write, { explainCache: flagBool(args, 'explain-cache') });
  else if (mode === 'json') onEvent = jsonRenderer((t) => void io.stdout.write(t));
  else if (mode === 'tty') {
    const tty = await ttyRenderer(io.stderr as NodeJS.WriteStream);
    onEvent = tty.onEvent;
    finish = () => tty.finish();
  }
  const secrets: Record<string, string> = {};
  for (const sec of flagList(args, 'secret')) {
    const kv = csvKeyValues(sec);
    if (kv.id === undefined || (kv.src ?? kv.source) === undefined) throw new TsbuildError('USAGE', `--secret needs id=ID,src=FILE: ${sec}`);
    secrets[kv.id] = kv.src ?? kv.source ?? '';
  }
  const tags = flagList(args, 'tag').map((t) => parseReference(t).toString());
  const network = flagString(args, 'network');
  if (network !== undefined && network !== 'host' && network !== 'none' && network !== 'default') throw new TsbuildError('USAGE', `--network must be host or none, not ${network}`);
  const memory = flagString(args, 'memory');
  const cpus = flagString(args, 'cpus');
  const pids = flagString(args, 'pids-limit');
  const sde = io.env.SOURCE_DATE_EPOCH;
  try {
    const result = await build(
      {
        contextDir: context,
        ...(flagString(args, 'file') !== undefined ? { dockerfile: flagString(args, 'file') as string } : {}),
        tags,
        buildArgs: keyValues(flagList(args, 'build-arg'), io.env),
        ...(flagString(args, 'target') !== undefined ? { target: flagString(args, 'target') as string } : {}),
        noCache: flagBool(args, 'no-cache'),
        noCacheFilter: flagList(args, 'no-cache-filter'),
        labels: keyValues(flagList(args, 'label'), {}),
        network: network === 'none' ? 'none' : 'host',
        limits: {
          ...(memory !== undefined ? { memoryBytes: parseBytes(memory) } : {}),
          ...(cpus !== undefined ? { cpus: Number(cpus) } : {}),
          ...(pids !== undefined ? { pids: Number(pids) } : {}),
        },
        pull: flagBool(args, 'pull'),
        platform: parsePlatform(flagString(args, 'platform') ?? 'linux/amd64'),
        secrets,
        ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
      },
      { store: s, registry: registryClient(args) },
      { signal: io.signal, onEvent },
    );
    finish();
    const iid = flagString(args, 'iidfile');
    if (iid !== undefined) await writeFile(iid, result.configDigest);
    const meta = flagString(args, 'metadata-file');
    if (meta !== undefined) {
      await writeFile(meta, `${JSON.stringify({ 'containerimage.digest': result.manifestDigest, 'containerimage.config.digest': result.configDigest, ...(tags.length > 0 ? { 'image.name': tags.join(',') } : {}) }, null, 2)}\n`);
    }
    for (const out of flagList(args, 'output')) await writeOutput(s, out, { name: tags[0] ?? 'tsbuild/image:latest', digest: result.manifestDigest }, io.signal);
    if (flagBool(args, 'push')) for (const t of tags) await pushRef(s, registryClient(args), t, t, io);
    if (quiet) io.stdout.write(`${result.configDigest}\n`);
    return 0;
  } finally {
    finish();
  }
}

async function writeOutput(s: Store, spec: string, image: { name: string; digest: Digest }, signal: AbortSignal): Promise<void> {
  const kv = csvKeyValues(spec);
  const dest = kv.dest;
  if (dest === undefined) throw new TsbuildError('USAGE', `--output needs dest=PATH: ${spec}`);
  const out = createWriteStream(dest);
  if (kv.type === 'oci') await exportOciArchive(s, [{ name: image.name, manifest: image.digest }], out, { compression: 'gzip', signal });
  else if (kv.type === 'docker') await exportDockerArchive(s, [{ name: image.name, manifest: image.digest }], out, { signal });
  else throw new TsbuildError('USAGE', `unsupported output type ${kv.type ?? '(none)'} (supported: oci, docker)`);
  out.end();
  await finished(out);
}

export const buildCommands: Record<string, Command> = {
  build: command('Build an image from a Dockerfile', 'build [OPTIONS] PATH', BUILD_FLAGS, buildCommand),
};
