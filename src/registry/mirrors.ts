/**
 * Pull mirrors and insecure registries from containers-registries.conf(5) (v2 format), the file
 * podman, buildah and skopeo share: `$CONTAINERS_REGISTRIES_CONF`, else
 * `/etc/containers/registries.conf` plus `registries.conf.d/*.conf` drop-ins (later files win per
 * prefix). Only the parts a pull needs are read; everything else in the file is ignored.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from '../util/errors.js';
import { RegistryError } from './errors.js';

export interface MirrorEntry {
  /** host[:port] of the mirror. */
  host: string;
  /** Use this mirror only for references pinned by digest (`pull-from-mirror = "digest-only"`). */
  digestOnly: boolean;
}

export interface RegistriesConf {
  /** Mirrors per registry host, in the order they are tried; the origin is always last. */
  mirrors: Record<string, MirrorEntry[]>;
  /** Registries (and mirrors) marked `insecure = true`. */
  insecure: string[];
}

type Value = string | boolean | number | string[];
type Table = Record<string, Value>;

/** The TOML subset registries.conf uses: tables, arrays of tables, strings, booleans, string arrays. */
export function parseRegistriesConf(text: string, file = 'registries.conf'): RegistriesConf {
  const registries: { table: Table; mirrors: Table[] }[] = [];
  let current: Table | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = stripComment(lines[i] ?? '').trim();
    if (line === '') continue;
    const fail = (why: string): never => {
      throw new RegistryError(`${file}:${i + 1}: ${why}`, { hint: 'see containers-registries.conf(5)' });
    };
    if (line.startsWith('[')) {
      const header = /^\[\[?\s*([A-Za-z0-9_.-]+)\s*\]\]?$/.exec(line)?.[1] ?? fail(`bad table header ${line}`);
      if (header === 'registry' && line.startsWith('[[')) {
        current = {};
        registries.push({ table: current, mirrors: [] });
      } else if (header === 'registry.mirror' && line.startsWith('[[')) {
        const owner = registries.at(-1) ?? fail('[[registry.mirror]] before any [[registry]]');
        current = {};
        owner.mirrors.push(current);
      } else current = undefined; // [aliases] and friends: not ours
      continue;
    }
    // A value may continue over lines (multi-line arrays).
    while (countOf(line, '[') > countOf(line, ']') && i + 1 < lines.length) line += ' ' + stripComment(lines[++i] ?? '').trim();
    // Lines of tables we ignore ([aliases] with quoted keys, say) are not checked.
    if (current === undefined) continue;
    const m = /^(?:"([^"]+)"|([A-Za-z0-9_.-]+))\s*=\s*(.+)$/.exec(line) ?? fail(`expected key = value, got ${line}`);
    current[m[1] ?? m[2] ?? ''] = parseValue(m[3] ?? '') ?? fail(`bad value ${m[3] ?? ''}`);
  }
  const out: RegistriesConf = { mirrors: {}, insecure: [] };
  for (const { table, mirrors } of registries) {
    const location = str(table['location']);
    const prefix = str(table['prefix']) ?? location;
    // Namespaced prefixes ("docker.io/library") and origin rewrites are not supported: skip them
    // rather than send pulls somewhere the user did not mean.
    if (prefix === undefined || prefix.includes('/') || (location !== undefined && location !== prefix)) continue;
    if (table['insecure'] === true) out.insecure.push(prefix);
    const digestOnlyAll = table['mirror-by-digest-only'] === true;
    out.mirrors[prefix] = mirrors.flatMap((mt) => {
      const host = str(mt['location']);
      if (host === undefined || host.includes('/')) return [];
      if (mt['insecure'] === true) out.insecure.push(host);
      return [{ host, digestOnly: digestOnlyAll || mt['pull-from-mirror'] === 'digest-only' }];
    });
  }
  return out;
}

function str(v: Value | undefined): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function countOf(s: string, ch: string): number {
  let n = 0;
  let quote: string | undefined;
  for (const c of s) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ch) n++;
  }
  return n;
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

function parseValue(raw: string): Value | undefined {
  const v = raw.trim();
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^-?\d+$/.test(v)) return Number(v);
  const s = /^"((?:[^"\\]|\\.)*)"$/.exec(v) ?? /^'([^']*)'$/.exec(v);
  if (s) return (s[1] ?? '').replace(/\\(["\\])/g, '$1');
  if (v.startsWith('[') && v.endsWith(']')) {
    const items = [...v.slice(1, -1).matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g)].map((x) => x[1] ?? x[2] ?? '');
    return items;
  }
  return undefined;
}

/** The default file, as the containers tools pick it. */
export function defaultRegistriesConfPath(env: NodeJS.ProcessEnv = process.env): string {
  return env['CONTAINERS_REGISTRIES_CONF'] ?? '/etc/containers/registries.conf';
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw new RegistryError(`cannot read ${file}`, { cause: err });
  }
}

/** Load a registries.conf and its `.d` drop-ins; a missing file means no mirrors. */
export async function loadRegistriesConf(file = defaultRegistriesConfPath()): Promise<RegistriesConf> {
  const files = [file];
  const dropDir = join(dirname(file), 'registries.conf.d');
  try {
    files.push(...(await readdir(dropDir)).filter((n) => n.endsWith('.conf')).sort().map((n) => join(dropDir, n)));
  } catch {
    // no drop-in folder
  }
  const merged: RegistriesConf = { mirrors: {}, insecure: [] };
  for (const f of files) {
    const text = await readOptional(f);
    if (text === undefined) continue;
    const conf = parseRegistriesConf(text, f);
    Object.assign(merged.mirrors, conf.mirrors);
    merged.insecure.push(...conf.insecure);
  }
  return merged;
}
