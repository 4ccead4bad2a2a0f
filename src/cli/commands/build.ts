/** `tsbuild build`: docker build's flags mapped onto the builder, then the requested outputs. */
import { build, type BuildResult } from '../../builder/execute.js';
import { isRemoteContext, remoteContext } from '../../builder/remote-context.js';
import { contextFromStream } from '../../builder/stdin-context.js';
import { checkOutputDest, parseOutput, writeFileOutput, type OutputSpec } from '../../builder/outputs.js';
import { parseSshSpecs } from '../../builder/mount-ssh.js';
import { parseNamedContexts } from '../../builder/named-context.js';
import { parsePlatform } from '../../builder/plan-platform.js';
import type { BuildEvent } from '../../builder/events.js';
import { parseReference } from '../../image/reference.js';
import { dockerfileTooLarge, MAX_DOCKERFILE_BYTES } from '../../parser/index.js';
import type { Store } from '../../store/index.js';
import { TsbuildError } from '../../util/errors.js';
import { checkOutputFile, writeOutputFile } from '../../util/output-file.js';
import { flagBool, flagList, flagString, keyValues, type FlagSpec, type ParsedArgs } from '../args.js';
import { jsonRenderer, plainRenderer } from '../progress/plain.js';
import { ttyRenderer } from '../progress/tty.js';
import { parseSecrets } from './secrets.js';
import { command, parseBytes, registryClient, store, type CliIO, type Command } from './shared.js';
import { pushRef } from './transfer.js';

const BUILD_FLAGS: FlagSpec[] = [
  { name: 'tag', short: 't', kind: 'list', help: 'name and optionally a tag (name:tag); repeatable' },
  { name: 'file', short: 'f', kind: 'string', help: 'Dockerfile path (default CONTEXT/Dockerfile; - reads it from stdin)' },
  { name: 'build-arg', kind: 'list', help: 'build-time variable KEY=VALUE' },
  { name: 'target', kind: 'string', help: 'stage to build' },
  { name: 'no-cache', kind: 'boolean', help: 'do not use the build cache' },
  { name: 'no-cache-filter', kind: 'list', help: 'do not use the cache for these stages' },
  { name: 'pull', kind: 'boolean', help: 'always pull base images' },
  { name: 'label', kind: 'list', help: 'image label KEY=VALUE' },
  { name: 'progress', kind: 'string', help: 'auto, tty, plain, json or quiet', default: 'auto' },
  { name: 'output', short: 'o', kind: 'list', help: 'type=oci|docker|tar|local,dest=PATH (- = stdout), type=registry[,name=REF], or DIR; repeatable' },
  { name: 'push', kind: 'boolean', help: 'push the tagged image after the build' },
  { name: 'iidfile', kind: 'string', help: 'write the image ID to this file' },
  { name: 'metadata-file', kind: 'string', help: 'write build metadata (JSON) to this file' },
  { name: 'network', kind: 'string', help: 'RUN network: host (default) or none' },
  { name: 'memory', short: 'm', kind: 'string', help: 'RUN memory limit (e.g. 512m)' },
  { name: 'cpus', kind: 'string', help: 'RUN CPU limit' },
  { name: 'pids-limit', kind: 'string', help: 'RUN process limit' },
  { name: 'secret', kind: 'list', help: 'secret for RUN --mount=type=secret: id=ID[,src=FILE|env=VAR][,type=file|env]' },
  { name: 'ssh', kind: 'list', help: 'SSH agent for RUN --mount=type=ssh: default|ID[=SOCKET|KEY[,KEY]]' },
  { name: 'build-context', kind: 'list', help: 'named context for FROM / COPY --from / a stage: NAME=DIR or NAME=docker-image://REF' },
  { name: 'platform', kind: 'string', help: 'target platform (linux/amd64)' },
  { name: 'explain-cache', kind: 'boolean', help: 'say why each step missed the cache' },
  { name: 'insecure-registry', kind: 'list', help: 'registry reachable over plain HTTP' },
  { name: 'quiet', short: 'q', kind: 'boolean', help: 'print only the image ID' },
];

async function buildCommand(args: ParsedArgs, io: CliIO): Promise<number> {
  const context = args.positionals[0];
  if (context === undefined) throw new TsbuildError('USAGE', 'build needs a context directory: tsbuild build [OPTIONS] PATH');
  const s = await store(args, io);
  if (isRemoteContext(context)) {
    // A Git repository or a URL (a context tar or a Dockerfile), fetched into the store's tmp dir.
    const remote = await remoteContext(s, context, io.signal);
    try {
      return await buildFrom(remote.dir, s, args, io, remote);
    } finally {
      await remote.dispose();
    }
  }
  if (context !== '-') return buildFrom(context, s, args, io);
  if (flagString(args, 'file') === '-') throw new TsbuildError('USAGE', 'the context and the Dockerfile cannot both be read from stdin (build - with -f -)');
  // `build -`: a context tar, or a Dockerfile alone, on stdin.
  const fromStdin = await contextFromStream(io.stdin, s.tmpDir, io.signal);
  try {
    return await buildFrom(fromStdin.dir, s, args, io, fromStdin);
  } finally {
    await fromStdin.dispose();
  }
}

/** `stdin`: the context came from stdin (a temporary dir), with the Dockerfile when that was all it held. */
async function buildFrom(context: string, s: Store, args: ParsedArgs, io: CliIO, stdin?: { dockerfileText?: string }): Promise<number> {
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
  const secrets = parseSecrets(flagList(args, 'secret'), io.env);
  // Outputs are checked before the build: a bad -o must not leave a new image and tag behind.
  const outputs = flagList(args, 'output').map(parseOutput);
  for (const out of outputs) await checkOutputDest(out);
  for (const name of ['iidfile', 'metadata-file']) {
    const path = flagString(args, name);
    if (path !== undefined) await checkOutputFile(path);
  }
  const file = flagString(args, 'file');
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
        ...(stdin?.dockerfileText !== undefined
          ? { dockerfileText: stdin.dockerfileText }
          : file === '-'
            ? { dockerfileText: await readStdinText(io) }
            : file !== undefined
              ? { dockerfile: file }
              : {}),
        ...(stdin !== undefined ? { ephemeralContext: true } : {}),
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
        ssh: parseSshSpecs(flagList(args, 'ssh'), io.env),
        namedContexts: parseNamedContexts(flagList(args, 'build-context'), process.cwd()),
        ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
      },
      { store: s, registry: registryClient(args) },
      { signal: io.signal, onEvent },
    );
    finish();
    await writeResults(s, result, args, io, { tags, quiet, outputs, sourceDateEpoch: sde !== undefined && /^\d+$/.test(sde) ? Number(sde) : undefined });
    if (quiet) io.stdout.write(`${result.configDigest}\n`);
    return 0;
  } finally {
    finish();
  }
}

/**
 * Every -o output and --push, then --iidfile and --metadata-file (as buildx writes them: after the
 * exports, so a failed export leaves neither). Each file is written whole or not at all.
 */
async function writeResults(s: Store, result: BuildResult, args: ParsedArgs, io: CliIO, o: { tags: string[]; quiet: boolean; outputs: OutputSpec[]; sourceDateEpoch: number | undefined }): Promise<void> {
  const { outputs } = o;
  const image = { name: o.tags[0] ?? 'tsbuild/image:latest', manifestDigest: result.manifestDigest };
  const pushed = new Set<string>();
  const push = async (name: string): Promise<void> => {
    const ref = parseReference(name).toString();
    if (pushed.has(ref)) return;
    pushed.add(ref);
    // pushRef reads the image by name from the store: name it first (a no-op for --tag names).
    await s.tags.set(ref, result.manifestDescriptor);
    // With -q stdout carries only the image ID: push progress goes to stderr.
    await pushRef(s, registryClient(args), ref, ref, o.quiet ? { ...io, stdout: io.stderr } : io);
  };
  for (const out of outputs) {
    if (out.type !== 'registry') {
      await writeFileOutput(s, out, image, { stdout: io.stdout, signal: io.signal, ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}) });
      continue;
    }
    const names = out.name !== undefined ? out.name.split(/[,\s]+/).filter((n) => n !== '') : o.tags;
    if (names.length === 0) throw new TsbuildError('USAGE', '-o type=registry needs name=REF or a --tag');
    for (const n of names) await push(n);
  }
  if (flagBool(args, 'push')) {
    if (o.tags.length === 0) throw new TsbuildError('USAGE', '--push needs a --tag');
    for (const t of o.tags) await push(t);
  }
  const iid = flagString(args, 'iidfile');
  if (iid !== undefined) await writeOutputText(iid, result.configDigest);
  const meta = flagString(args, 'metadata-file');
  if (meta !== undefined) {
    const names = [...o.tags, ...outputs.flatMap((out) => (out.type === 'registry' && out.name !== undefined ? [parseReference(out.name).toString()] : []))];
    const doc = {
      'containerimage.config.digest': result.configDigest,
      'containerimage.descriptor': { mediaType: result.manifestDescriptor.mediaType, digest: result.manifestDigest, size: result.manifestDescriptor.size },
      'containerimage.digest': result.manifestDigest,
      ...(names.length > 0 ? { 'image.name': [...new Set(names)].join(',') } : {}),
    };
    await writeOutputText(meta, `${JSON.stringify(doc, null, 2)}\n`);
  }
}

function writeOutputText(path: string, text: string): Promise<void> {
  return writeOutputFile(path, (out) => {
    out.end(text);
    return Promise.resolve(); // writeOutputFile waits for the data to be flushed
  });
}

export const buildCommands: Record<string, Command> = {
  build: command('Build an image from a Dockerfile', 'build [OPTIONS] PATH | URL | -', BUILD_FLAGS, buildCommand),
};

/** All of stdin as text (`-f -`), refused past MAX_DOCKERFILE_BYTES before it is all read. */
async function readStdinText(io: CliIO): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    size += buf.length;
    if (size > MAX_DOCKERFILE_BYTES) throw dockerfileTooLarge('the Dockerfile on stdin (-f -)', { hint: 'is this the right input?' });
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
