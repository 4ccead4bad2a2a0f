/**
 * Finds the compiled launcher (native/sandbox.c → dist/native/sandbox, built by
 * scripts/build-native.mjs). Looked up, in order: $TSBUILD_SANDBOX_LAUNCHER; next to the compiled
 * module (dist/src/sandbox/*.js → dist/native/sandbox); from the TS sources (src/sandbox/*.ts →
 * dist/native/sandbox, for vitest); <cwd>/dist/native/sandbox.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../util/errors.js';

let cached: string | undefined;

export function launcherCandidates(): string[] {
  const fromEnv = process.env.TSBUILD_SANDBOX_LAUNCHER;
  return [
    ...(fromEnv ? [fromEnv] : []),
    fileURLToPath(new URL('../../native/sandbox', import.meta.url)),
    fileURLToPath(new URL('../../dist/native/sandbox', import.meta.url)),
    join(process.cwd(), 'dist/native/sandbox'),
  ];
}

export async function findLauncher(): Promise<string> {
  if (cached !== undefined) return cached;
  const candidates = launcherCandidates();
  for (const path of candidates) {
    try {
      await access(path, constants.X_OK);
      cached = path;
      return path;
    } catch {
      // try the next location
    }
  }
  throw new TsbuildError('SANDBOX', 'sandbox launcher not found', {
    hint: `run \`node scripts/build-native.mjs\` (looked in: ${candidates.join(', ')})`,
  });
}
