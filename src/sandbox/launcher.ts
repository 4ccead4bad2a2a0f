/**
 * Finds the compiled launcher (native/sandbox.c → dist/native/sandbox, built by
 * scripts/build-native.mjs). Looked up, in order: $TSBUILD_SANDBOX_LAUNCHER, then util/native.ts's
 * nativeDirs() (compiled tree, TS sources under vitest, the bundle, <cwd>/dist/native).
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../util/errors.js';
import { nativeDirs } from '../util/native.js';

let cached: string | undefined;

export function launcherCandidates(): string[] {
  const fromEnv = process.env.TSBUILD_SANDBOX_LAUNCHER;
  return [
    ...(fromEnv ? [fromEnv] : []),
    ...nativeDirs().map((dir) => join(dir, 'sandbox')),
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
