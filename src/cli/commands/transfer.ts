/** Moving images in and out: push, pull, save, load, login, logout. */
import { createReadStream, createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { parsePlatform } from '../../builder/plan-platform.js';
import { MediaType, type Digest, type Manifest } from '../../image/index.js';
import { parseReference } from '../../image/reference.js';
import { compressLayer, exportDockerArchive, exportOciArchive, importArchive } from '../../layers/index.js';
import { login, logout, pullImage, pushImage, type RegistryClient } from '../../registry/index.js';
import type { Store } from '../../store/index.js';
import { TsbuildError } from '../../util/errors.js';
import { flagBool, flagString } from '../args.js';
import { command, loadImage, registryClient, resolveLocal, store, type CliIO, type Command } from './shared.js';

export async function pushRef(s: Store, client: RegistryClient, src: string, dest: string, io: CliIO): Promise<Digest> {
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

export const transferCommands: Record<string, Command> = {
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
};
