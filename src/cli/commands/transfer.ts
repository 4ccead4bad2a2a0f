/** Moving images in and out: push, pull, save, load, login, logout. */
import { createReadStream } from 'node:fs';
import { parsePlatform } from '../../builder/plan-platform.js';
import { MediaType, type Digest } from '../../image/index.js';
import { parseReference } from '../../image/reference.js';
import { exportDockerArchive, exportOciArchive, importArchive, type ArchiveRef } from '../../layers/index.js';
import { pullIntoStore } from '../../api/pull.js';
import { pushLocalImage, type PushLocalOptions } from '../../api/push.js';
import {
  login,
  logout,
  parseProgressMode,
  transferProgress,
  type ProgressMode,
  type RegistryClient,
} from '../../registry/index.js';
import type { Store } from '../../store/index.js';
import { TsbuildError } from '../../util/errors.js';
import { writeOutputFile } from '../../util/output-file.js';
import { flagBool, flagString } from '../args.js';
import { command, registryClient, resolveLocal, store, type CliIO, type Command } from './shared.js';

export interface PushRefOptions extends Pick<PushLocalOptions, 'compression' | 'level' | 'concurrency'> {
  progress?: ProgressMode;
}

const COMPRESSIONS = ['gzip', 'zstd', 'uncompressed'] as const;

const PROGRESS_FLAG = { name: 'progress', kind: 'string', help: 'auto, plain, json, tty or quiet', default: 'auto' } as const;

/** Push a local image to `dest` (src/api/push.ts), printing docker's `DEST: digest: sha256:… size: N`. */
export async function pushRef(s: Store, client: RegistryClient, src: string, dest: string, io: CliIO, options: PushRefOptions = {}): Promise<Digest> {
  const ref = parseReference(dest);
  const progress = await transferProgress(options.progress ?? 'quiet', 'push', io.stdout);
  try {
    if (options.progress === 'plain') io.stdout.write(`The push refers to repository [${ref.registry}/${ref.repository}]\n`);
    const result = await pushLocalImage(s, client, src, dest, {
      ...(options.compression !== undefined ? { compression: options.compression } : {}),
      ...(options.level !== undefined ? { level: options.level } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      signal: io.signal,
      onProgress: (e) => progress.onProgress(e),
      onLayerReady: (ready, total) => progress.setLayers(ready, total),
    });
    progress.finish();
    io.stdout.write(`${ref.familiar()}: digest: ${result.digest} size: ${result.size}\n`);
    return result.digest;
  } finally {
    progress.finish();
  }
}

export const transferCommands: Record<string, Command> = {
  save: command('Write images to an OCI (default) or docker archive', 'save [-o FILE] [--format oci|docker] IMAGE...', [
    { name: 'output', short: 'o', kind: 'string', help: 'archive path (default stdout)' },
    { name: 'format', kind: 'string', help: 'oci or docker', default: 'oci' },
  ], async (args, io) => {
    const format = flagString(args, 'format') ?? 'oci';
    // Checked first: an unknown format used to write an OCI archive without a word.
    if (format !== 'oci' && format !== 'docker') throw new TsbuildError('USAGE', `unknown format ${format}`, { hint: 'use --format oci or --format docker' });
    const s = await store(args, io);
    const refs: ArchiveRef[] = [];
    for (const p of args.positionals) refs.push(await resolveLocal(s, p).then((l) => ({ name: l.name, manifest: l.digest })));
    if (refs.length === 0) throw new TsbuildError('USAGE', 'save needs at least one image');
    const file = flagString(args, 'output');
    const docker = format === 'docker';
    const write = (out: NodeJS.WritableStream): Promise<void> =>
      docker ? exportDockerArchive(s, refs, out, { signal: io.signal }) : exportOciArchive(s, refs, out, { compression: 'gzip', signal: io.signal });
    // A failed save leaves no partial archive, and an archive that was there before as it was.
    if (file !== undefined) await writeOutputFile(file, write);
    else await write(io.stdout);
    return 0;
  }),
  load: command('Load images from an OCI or docker archive', 'load [-i FILE]', [{ name: 'input', short: 'i', kind: 'string', help: 'archive path (default stdin)' }], async (args, io) => {
    const s = await store(args, io);
    const file = flagString(args, 'input');
    // A GC lease: a concurrent prune must not collect blobs loaded but not yet tagged.
    await s.withLease(async () => {
      const loaded = await importArchive(s, file !== undefined ? createReadStream(file) : io.stdin, { signal: io.signal });
      for (const l of loaded) {
        if (l.name === undefined) {
          io.stdout.write(`Loaded image ID: ${l.manifest}\n`);
          continue;
        }
        // Archives carry names as written (familiar or not); the store keeps them normalised.
        const bytes = await s.blobs.readBytes(l.manifest, { maxSize: 4 << 20 });
        const mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.OciManifest;
        await s.tags.set(parseReference(l.name).toString(), { mediaType, digest: l.manifest, size: bytes.length });
        io.stdout.write(`Loaded image: ${l.name}\n`);
      }
    }, { signal: io.signal });
    return 0;
  }),
  pull: command('Pull an image from a registry', 'pull [--platform P] [--progress MODE] IMAGE', [
    { name: 'platform', kind: 'string', help: 'os/arch[/variant]' },
    { name: 'insecure-registry', kind: 'list', help: 'registry reachable over plain HTTP' },
    PROGRESS_FLAG,
  ], async (args, io) => {
    const text = args.positionals[0];
    if (text === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild pull IMAGE');
    const mode = parseProgressMode(flagString(args, 'progress'), io.stdout.isTTY === true);
    const s = await store(args, io);
    const ref = parseReference(text);
    const progress = await transferProgress(mode, 'pull', io.stdout);
    try {
      if (mode === 'plain') io.stdout.write(`${ref.digest ?? ref.tag ?? 'latest'}: Pulling from ${ref.registry === 'docker.io' ? ref.repository : `${ref.registry}/${ref.repository}`}\n`);
      const r = await pullIntoStore(s, registryClient(args), ref, {
        platform: parsePlatform(flagString(args, 'platform') ?? 'linux/amd64'),
        signal: io.signal,
        onProgress: (e) => progress.onProgress(e),
        onManifest: (m) => progress.setLayers(m.layers),
      });
      progress.finish();
      if (mode === 'quiet') io.stdout.write(`${ref.familiar()}\n`);
      else io.stdout.write(`Digest: ${r.indexDigest ?? r.manifestDigest}\nStatus: Downloaded newer image for ${ref.familiar()}\n`);
    } finally {
      progress.finish();
    }
    return 0;
  }),
  push: command('Push an image to a registry', 'push [--compression gzip|zstd|uncompressed] [--compression-level N] [--progress MODE] SOURCE [DESTINATION]', [
    { name: 'insecure-registry', kind: 'list', help: 'registry reachable over plain HTTP' },
    { name: 'compression', kind: 'string', help: 'gzip, zstd or uncompressed, for layers built here', default: 'gzip' },
    { name: 'compression-level', kind: 'string', help: 'compression level (gzip 0-9, zstd 1-19)' },
    PROGRESS_FLAG,
  ], async (args, io) => {
    const [src, dst] = args.positionals;
    if (src === undefined) throw new TsbuildError('USAGE', 'usage: tsbuild push SOURCE [DESTINATION]');
    const compression = flagString(args, 'compression') ?? 'gzip';
    if (!(COMPRESSIONS as readonly string[]).includes(compression)) throw new TsbuildError('USAGE', `--compression must be one of ${COMPRESSIONS.join(', ')}, not ${JSON.stringify(compression)}`);
    const levelText = flagString(args, 'compression-level');
    const level = levelText === undefined ? undefined : Number(levelText);
    const max = compression === 'zstd' ? 19 : 9;
    if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > max)) {
      throw new TsbuildError('USAGE', `--compression-level must be an integer from 0 to ${max} for ${compression}, not ${JSON.stringify(levelText)}`);
    }
    const progress = parseProgressMode(flagString(args, 'progress'), io.stdout.isTTY === true);
    const s = await store(args, io);
    await pushRef(s, registryClient(args), src, dst ?? src, io, { compression: compression as (typeof COMPRESSIONS)[number], ...(level !== undefined ? { level } : {}), progress });
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
};
