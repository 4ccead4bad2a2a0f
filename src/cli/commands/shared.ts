/** What every command shares: the IO seam, the command shape, store and registry access, local image lookup, table helpers. */
import { loadImage as loadLocalImage, resolveLocal as resolveLocalImage, safeRef as safeReference } from '../../api/local.js';
import type { Digest, ImageConfig, Manifest } from '../../image/index.js';
import { DockerConfigAuth, RegistryClient } from '../../registry/index.js';
import { defaultStoreRoot, openStore, type Store } from '../../store/index.js';
import { TsbuildError } from '../../util/errors.js';
import { createdSince } from '../format/units.js';
import { flagList, flagString, formatHelp, keyValues, type FlagSpec, type ParsedArgs } from '../args.js';

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

export function command(summary: string, usage: string, flags: FlagSpec[], run: Command['run']): Command {
  return { summary, usage, flags, run, help: (all) => formatHelp(`tsbuild ${usage}`, summary, all) };
}

export async function store(args: ParsedArgs, io: CliIO): Promise<Store> {
  return openStore(flagString(args, 'root') ?? io.env.TSBUILD_ROOT ?? defaultStoreRoot(), { signal: io.signal });
}

export function registryClient(args: ParsedArgs): RegistryClient {
  return new RegistryClient({ auth: new DockerConfigAuth(), insecureRegistries: flagList(args, 'insecure-registry') });
}

/** A local image by reference: the normalised name, or a manifest/config digest prefix. */
export async function resolveLocal(s: Store, text: string): Promise<{ name: string; digest: Digest }> {
  return resolveLocalImage(s, text);
}

export function safeRef(text: string): string | undefined {
  return safeReference(text)?.toString();
}

export async function configDigest(s: Store, manifest: Digest): Promise<Digest> {
  return (await s.blobs.readJson<Manifest>(manifest)).config.digest;
}

export async function loadImage(s: Store, manifestDigest: Digest): Promise<{ manifest: Manifest; config: ImageConfig }> {
  return loadLocalImage(s, manifestDigest);
}

/** `k=v,k=v` flag values (`--secret`, `--output`), split on the first `=` of each part. */
export function csvKeyValues(text: string): Record<string, string> {
  return keyValues(text.split(','), {});
}

export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(text.trim());
  if (m === null) throw new TsbuildError('USAGE', `invalid size ${text}`);
  const mult: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Math.round(Number(m[1]) * (mult[(m[2] ?? '').toLowerCase()] ?? 1));
}

export function pad(cols: string[], widths: number[]): string {
  return cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
}

/** docker's CREATED column ("2 hours ago"). */
export function ago(iso: string | undefined): string {
  return createdSince(iso);
}
