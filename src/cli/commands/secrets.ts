/**
 * `--secret` as buildx reads it: `id=ID[,src|source=FILE][,env=VAR][,type=file|env]`. With neither
 * src nor env, an environment variable named ID if one is set, else a file named ID; `type=env`
 * with `src=` names the variable. A file is checked now (it must exist and be at most 500 KB, as
 * BuildKit's secret provider refuses larger ones); an unset variable leaves the secret out, so
 * a required mount fails and an optional one is skipped, as in BuildKit.
 */
import { statSync } from 'node:fs';
import type { SecretSource } from '../../builder/execute.js';
import { TsbuildError } from '../../util/errors.js';
import { ownValue } from '../../util/own.js';

const MAX_SECRET_BYTES = 500 * 1024;

export function parseSecrets(specs: string[], env: NodeJS.ProcessEnv): Record<string, SecretSource> {
  // A Map, then own properties: an id such as __proto__ must stay an ordinary key.
  const out = new Map<string, SecretSource>();
  for (const spec of specs) {
    let id: string | undefined;
    let file: string | undefined;
    let variable: string | undefined;
    let type: string | undefined;
    for (const field of spec.split(',')) {
      const eq = field.indexOf('=');
      const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? '' : field.slice(eq + 1);
      if (key === 'id') id = value;
      else if (key === 'src' || key === 'source') file = value;
      else if (key === 'env') variable = value;
      else if (key === 'type') type = value;
      else throw new TsbuildError('USAGE', `--secret: unexpected key '${key}' in '${field}'`);
    }
    if (type !== undefined && type !== 'file' && type !== 'env') throw new TsbuildError('USAGE', `--secret: unsupported secret type "${type}"`);
    if (id === undefined || id === '') throw new TsbuildError('USAGE', `--secret needs id=ID: ${spec}`);
    if (type === 'env' && variable === undefined) [variable, file] = [file ?? id, undefined];
    if (file === undefined && variable === undefined) {
      if (type !== 'file' && ownValue(env, id) !== undefined) variable = id;
      else file = id;
    }
    if (variable !== undefined) {
      const value = ownValue(env, variable);
      if (value !== undefined) out.set(id, { value });
      continue;
    }
    const path = file ?? id;
    const st = statSync(path, { throwIfNoEntry: false });
    if (st === undefined) throw new TsbuildError('USAGE', `--secret ${id}: failed to stat ${path}: no such file`);
    if (!st.isFile()) throw new TsbuildError('USAGE', `--secret ${id}: ${path} is not a regular file`);
    if (st.size > MAX_SECRET_BYTES) throw new TsbuildError('USAGE', `--secret ${id}: secret too big (${st.size} bytes), max size 500KB`);
    out.set(id, path);
  }
  return Object.fromEntries(out);
}
