/** `RUN --mount=...` parsing, as BuildKit's commands_runmount.go. */
import type { MountType, RunMount } from '../types.js';
import { suggest } from '../suggest.js';
import { FlagError } from '../bflag.js';

const mountTypes: MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const sharing = ['shared', 'private', 'locked'] as const;
const allKeys = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/** One record of Go's encoding/csv (comma separated, `"` quoting with `""` escapes). */
export function csvFields(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new FlagError(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
        const c = line[i] as string;
        if (c === '"') {
          if (line[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (i < line.length && line[i] !== ',') throw new FlagError(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
    } else {
      const end = line.indexOf(',', i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      if (field.includes('"')) throw new FlagError(`failed to parse csv mounts: bare " in non-quoted-field`);
      i = end < 0 ? line.length : end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

/** go-units RAMInBytes: "64m", "1.5GiB", "512" → bytes (binary multiples). */
export function ramInBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(s);
  if (m === null) throw new FlagError(`invalid size: '${s}'`);
  const mult: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
  const n = Number.parseFloat(m[1] ?? '0');
  return Math.trunc(n * (m[2] === undefined ? 1 : (mult[m[2].toLowerCase()] ?? 1)));
}

function parseBool(v: string, key: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new FlagError(`invalid value for ${key}: ${v}`);
}

function parseUint(v: string, base: 8 | 10, what: string): number {
  const ok = base === 8 ? /^[0-7]+$/.test(v) : /^\d+$/.test(v);
  const n = ok ? Number.parseInt(v, base) : NaN;
  if (!ok || n > 0xffffffff) throw new FlagError(`invalid value ${v} for ${what}`);
  return n;
}

/**
 * Parse one --mount value. Without `expand` values are taken literally and those holding a `$`
 * are not validated (BuildKit defers them to dispatch); the builder passes an expander then.
 */
export function parseRunMount(raw: string, expand?: (s: string) => string): RunMount {
  const m: RunMount = { raw, type: 'bind', readonly: false, required: false };
  let roAuto = true;
  for (const field of csvFields(raw)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') { m.readonly = true; roAuto = false; continue; }
      if (key === 'readwrite' || key === 'rw') { m.readonly = false; roAuto = false; continue; }
      if (key === 'required') {
        if (m.type === 'secret' || m.type === 'ssh') { m.required = true; continue; }
        throw new FlagError(`unexpected key '${key}' for mount type '${m.type}'`);
      }
      throw new FlagError(`invalid field '${field}' must be a key=value pair`);
    }
    let value = field.slice(eq + 1);
    if (expand !== undefined) {
      value = expand(value);
    } else if (key === 'from') {
      const i = value.indexOf('$');
      if (i !== -1 && i !== value.length - 1) throw new FlagError(`'${key}' doesn't support variable expansion, define alias stage instead`);
    } else if (value.includes('$') && !['source', 'src', 'target', 'dst', 'destination', 'id', 'env'].includes(key)) {
      continue; // validated once expanded, at dispatch time
    }
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!(mountTypes as string[]).includes(t)) throw new FlagError(`unsupported mount type "${value}"`, suggest(value, mountTypes, true));
        m.type = t as MountType;
        break;
      }
      case 'from': m.from = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'target': case 'dst': case 'destination': m.target = value; break;
      case 'readonly': case 'ro': m.readonly = parseBool(value, key); roAuto = false; break;
      case 'readwrite': case 'rw': m.readonly = !parseBool(value, key); roAuto = false; break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new FlagError(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(value, key);
        break;
      case 'size':
        if (m.type !== 'tmpfs') throw new FlagError(`unexpected key 'size' for mount type '${m.type}'`);
        m.size = ramInBytes(value);
        break;
      case 'id': m.id = value; break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (!(sharing as readonly string[]).includes(s)) throw new FlagError(`unsupported sharing value "${value}"`);
        m.sharing = s as RunMount['sharing'] & string;
        break;
      }
      case 'mode': m.mode = parseUint(value, 8, 'mode'); break;
      case 'uid': m.uid = parseUint(value, 10, 'uid'); break;
      case 'gid': m.gid = parseUint(value, 10, 'gid'); break;
      case 'env': m.env = value; break;
      default:
        throw new FlagError(`unexpected key '${key}' in '${field}'`, suggest(key, allKeys, true));
    }
  }
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  for (const k of ['mode', 'uid', 'gid'] as const) {
    if (m[k] !== undefined && !fileInfoAllowed) throw new FlagError(`${k} not allowed for "${m.type}" type mounts`);
  }
  if (roAuto) m.readonly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.sharing !== undefined && m.type !== 'cache') throw new FlagError(`invalid cache sharing set for ${m.type} mount`);
  if (m.type === 'secret') {
    if (m.from !== undefined) throw new FlagError('secret mount should not have a from');
    const unset = (v: string | undefined): boolean => (v ?? '') === '';
    if (unset(m.source) && unset(m.target) && unset(m.id)) throw new FlagError('invalid secret mount. one of source, target required');
    if (!unset(m.source) && !unset(m.id)) throw new FlagError("both source and id can't be set");
  }
  return m;
}
