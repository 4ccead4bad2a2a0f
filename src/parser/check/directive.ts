/** The `# check=skip=A,B;error=true` directive (and the BUILDKIT_DOCKERFILE_CHECK build-arg). */
import { DockerfileError } from '../errors.js';

export interface CheckConfig {
  skip: Set<string>;
  skipAll: boolean;
  /** error=true: violations fail the build (findings get severity "error"). */
  error: boolean;
}

export function parseCheckConfig(value: string | undefined, file: string, line = 1): CheckConfig {
  const cfg: CheckConfig = { skip: new Set(), skipAll: false, error: false };
  if (value === undefined || value.trim() === '') return cfg;
  for (const part of value.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    const key = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : p.slice(eq + 1).trim();
    if (key === 'skip') {
      for (const r of val.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
        if (r.toLowerCase() === 'all') cfg.skipAll = true;
        else cfg.skip.add(r);
      }
    } else if (key === 'error') {
      const v = val.toLowerCase();
      if (v !== 'true' && v !== 'false') throw new DockerfileError(`failed to parse check options: invalid value for error: ${val}`, { file, line });
      cfg.error = v === 'true';
    } else if (key !== 'experimental') {
      throw new DockerfileError(`failed to parse check options: invalid check option "${key}"`, { file, line });
    }
  }
  return cfg;
}
