/**
 * The command table. Each command parses its flags, opens the store, calls the library, and
 * prints. Output formats follow docker's where docker has the command.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { build } from '../builder/execute.js';
import { parsePlatform } from '../builder/plan-platform.js';
import type { BuildEvent } from '../builder/events.js';
import { MediaType, type Digest, type ImageConfig, type Manifest } from '../image/index.js';
import { parseReference } from '../image/reference.js';
import { compressLayer, exportDockerArchive, exportOciArchive, importArchive } from '../layers/index.js';
import { dumpBuildkit, parseDockerfile } from '../parser/index.js';
import { DockerConfigAuth, login, logout, pullImage, pushImage, RegistryClient } from '../registry/index.js';
import { defaultStoreRoot, openStore, prune, verifyStore, type Store } from '../store/index.js';
import { TsbuildError } from '../util/errors.js';
import { flagBool, flagList, flagString, formatHelp, keyValues, type FlagSpec, type ParsedArgs } from './args.js';
import { jsonRenderer, plainRenderer } from './progress/plain.js';
import { formatBytes, ttyRenderer } from './progress/tty.js';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export interface Command {
  summary: string;
  usage: string;
  flags: FlagSpec[];
  help(all: FlagSpec[]): string;
  run(args: ParsedArgs, io: CliIO): Promise<number>;
}

function command(summary: string, usage: string, flags: FlagSpec[], run: Command['run']): Command {
  return { summary, usage, flags, run, help: (all) => formatHelp(`tsbuild ${usage}`, summary, all) };
}

async function store(args: ParsedArgs, io: CliIO): Promise<Store> {
  return openStore(flagString(args, 'root') ?? io.env.TSBUILD_ROOT ?? defaultStoreRoot(), { signal: io.signal });
}

function registryClient(args: ParsedArgs): RegistryClient {
  return new RegistryClient({ auth: new DockerConfigAuth(), insecureRegistries: flagList(args, 'insecure-registry') });
}

/** A local image by reference: the normalised name, or a manifest/config digest prefix. */
async function resolveLocal(s: Store, text: string): Promise<{ name: string; digest: Digest }> {
  const tags = await s.tags.list();
  const ref = safeRef(text);
  const byName = ref !== undefined ? tags.find((t) => t.name === ref) : undefined;
  if (byName !== undefined) return { name: byName.name, digest: byName.descriptor.digest };
  const hex = text.replace(/^sha256:/, '');
  if (/^[a-f0-9]{6,64}$/.test(hex)) {
    for (const t of tags) {
      const cfg = await configDigest(s, t.descriptor.digest);
      if (t.descriptor.digest.slice(7).startsWith(hex) || cfg.slice(7).startsWith(hex)) return { name: t.name, digest: t.descriptor.digest };
    }
  }
  throw new TsbuildError('NOT_FOUND', `image ${text} not found in the local store`, { hint: 'see `tsbuild images`' });
}

function safeRef(text: string): string | undefined {
  try {
    return parseReference(text).toString();
  } catch {
    return undefined;
  }
}

async function configDigest(s: Store, manifest: Digest): Promise<Digest> {
  return (await s.blobs.readJson<Manifest>(manifest)).config.digest;
}

async function loadImage(s: Store, manifestDigest: Digest): Promise<{ manifest: Manifest; config: ImageConfig }> {
  const manifest = await s.blobs.readJson<Manifest>(manifestDigest, { maxSize: 4 << 20 });
  const config = await s.blobs.readJson<ImageConfig>(manifest.config.digest, { maxSize: 8 << 20 });
  return { manifest, config };
}

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

/** `k=v,k=v` flag values (`--secret`, `--output`), split on the first `=` of each part. */
function csvKeyValues(text: string): Record<string, string> {
  return keyValues(text.split(','), {});
}

function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(text.trim());
  if (m === null) throw new TsbuildError('USAGE', `invalid size ${text}`);
  const mult: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Math.round(Number(m[1]) * (mult[(m[2] ?? '').toLowerCase()] ?? 1));
}

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

async function pushRef(s: Store, client: RegistryClient, src: string, dest: string, io: CliIO): Promise<Digest> {
  const local = await resolveLocal(s, src);
  const { manifest } = await loadImage(s, local.digest);
  // Compression is lazy: built layers are stored as plain tars and gzipped (cached) only now.
  const layers = await Promise.all(manifest.layers.map((l) => (l.mediaType === MediaType.OciLayer ? compressLayer(s, l.digest, { format: 'gzip', signal: io.signal }) : Promise.resolve(l))));
  const pushed: Manifest = { ...manifest, layers };
  const bytes = Buffer.from(JSON.stringify(pushed));
  const result = await pushImage(client, s.blobs, parseReference(dest), { manifestBytes: bytes, manifestMediaType: pushed.mediaType ?? MediaType.OciManifest, manifest: pushed }, { signal: io.signal });
  io.stdout.write(`${parseReference(dest).familiar()}: digest: ${result.digest} size: ${bytes.length}\n`);
  return result.digest;
}

function pad(cols: string[], widths: number[]): string {
  return cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
}

function ago(iso: string | undefined): string {
  if (iso === undefined) return 'N/A';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  const units: [number, string][] = [[31536000, 'year'], [2592000, 'month'], [604800, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute']];
  for (const [n, u] of units) if (s >= n) { const v = Math.floor(s / n); return `${v === 1 && u === 'hour' ? 'About an' : v} ${u}${v > 1 ? 's' : ''} ago`; }
  return s < 1 ? 'Less than a second ago' : `${Math.floor(s)} seconds ago`;
}

export const COMMANDS: Record<string, Command> = {
  build: command('Build an image from a Dockerfile', 'build [OPTIONS] PATH', BUILD_FLAGS, buildCommand),
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
  save: command('Write images to an OCI (default) or docker archive', 'save [-o FILE] [--format oci|docker] IMAGE...', [
    { name: 'output', short: 'o', kind: 'string', help: 'archive path (default stdout)' },
    { name: 'format', kind: 'string', help: 'oci or docker', default: 'oci' },
  ], async (args, io) => {
    const s = await store(args, io);
    const refs = [];
    for (const p of args.positionals) refs.push(await resolveLocal(s, p).then((l) => ({ name: l.name, manifest: l.digest })));
    if (refs.length === 0) throw new TsbuildError('USAGE', 'save needs at least one image');
    const file = flagString(args, 'output');
    const out = file !== undefined ? createWriteStream(file) : io.stdout;
    if (flagString(args, 'format') === 'docker') await exportDockerArchive(s, refs, out, { signal: io.signal });
    else await exportOciArchive(s, refs, out, { compression: 'gzip', signal: io.signal });
    if (file !== undefined) {
      out.end();
      await finished(out);
    }
    return 0;
  }),
  load: command('Load images from an OCI or docker archive', 'load [-i FILE]', [{ name: 'input', short: 'i', kind: 'string', help: 'archive path (default stdin)' }], async (args, io) => {
    const s = await store(args, io);
    const file = flagString(args, 'input');
    const loaded = await importArchive(s, file !== undefined ? createReadStream(file) : io.stdin, { signal: io.signal });
    for (const l of loaded) io.stdout.write(`Loaded image: ${l.name ?? l.manifest}\n`);
    return 0;
  }),
  pull: command('Pull an image from a registry', 'pull [--platform P] IMAGE', [
    { name: 'platform', kind: 'string', help: 'os/arch[/variant]' },
    { name: 'insecure-registry', kind: 'list', help: 'registry reachable over plain HTTP' },
  ], async (args, io) => {
    const text = args.positionals[0];
    if (text === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild pull IMAGE');
    const s = await store(args, io);
    const ref = parseReference(text);
    const r = await pullImage(registryClient(args), ref, s.blobs, { platform: parsePlatform(flagString(args, 'platform') ?? 'linux/amd64'), signal: io.signal });
    await s.tags.set(ref.toString(), { mediaType: r.manifest.mediaType ?? MediaType.OciManifest, digest: r.manifestDigest, size: r.manifestBytes.length });
    io.stdout.write(`Digest: ${r.manifestDigest}\nStatus: Downloaded newer image for ${ref.familiar()}\n`);
    return 0;
  }),
  push: command('Push an image to a registry', 'push SOURCE [DESTINATION]', [{ name: 'insecure-registry', kind: 'list', help: 'registry reachable over plain HTTP' }], async (args, io) => {
    const [src, dst] = args.positionals;
    if (src === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild push SOURCE [DESTINATION]');
    const s = await store(args, io);
    await pushRef(s, registryClient(args), src, dst ?? src, io);
    return 0;
  }),
  login: command('Log in to a registry', 'login [-u USER] [--password-stdin] HOST', [
    { name: 'username', short: 'u', kind: 'string', help: 'user name' },
    { name: 'password', short: 'p', kind: 'string', help: 'password (prefer --password-stdin)' },
    { name: 'password-stdin', kind: 'boolean', help: 'read the password from stdin' },
  ], async (args, io) => {
    const host = args.positionals[0];
    const user = flagString(args, 'username');
    if (host === undefined || user === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild login -u USER --password-stdin HOST');
    let password = flagString(args, 'password');
    if (flagBool(args, 'password-stdin')) {
      const chunks: Buffer[] = [];
      for await (const c of io.stdin) chunks.push(Buffer.from(c as Buffer));
      password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    }
    if (password === undefined) throw new TsbuildError('USAGE', 'a password is needed: --password-stdin');
    await login(host, user, password, { signal: io.signal });
    io.stdout.write('Login Succeeded\n');
    return 0;
  }),
  logout: command('Log out of a registry', 'logout HOST', [], async (args, io) => {
    const host = args.positionals[0];
    if (host === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild logout HOST');
    io.stdout.write((await logout(host, { signal: io.signal })) ? `Removing login credentials for ${host}\n` : `Not logged in to ${host}\n`);
    return 0;
  }),
  parse: command('Parse a Dockerfile and print it', 'parse [--format json|buildkit] [-f FILE]', [
    { name: 'file', short: 'f', kind: 'string', help: 'Dockerfile path', default: 'Dockerfile' },
    { name: 'format', kind: 'string', help: 'json or buildkit', default: 'json' },
  ], async (args, io) => {
    const file = flagString(args, 'file') ?? args.positionals[0] ?? 'Dockerfile';
    const text = await readFile(file, 'utf8');
    if (flagString(args, 'format') === 'buildkit') io.stdout.write(dumpBuildkit(text));
    else io.stdout.write(`${JSON.stringify(parseDockerfile(text, { file }), null, 2)}\n`);
    return 0;
  }),
  version: command('Print the version', 'version', [], (_args, io) => {
    io.stdout.write('tsbuild 0.1.0\n');
    return Promise.resolve(0);
  }),
};
