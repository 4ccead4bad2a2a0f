/**
 * The cache across two separate CLI processes over a 30,000-file context: the second process hits
 * every step and reads no file contents (the stat memo persisted in the store). Slow by nature
 * (tsc emit of the CLI + a cold COPY of 30,000 files), so it lives in its own file.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusybox, makeContext, newStore, tempDir } from './helpers.js';

const exec = promisify(execFile);
const repo = new URL('../..', import.meta.url).pathname;
let dist: string;
let root: string;
let ctx: string;

beforeAll(async () => {
  // The CLI as shipped: compiled JS run by plain node in its own process.
  dist = await tempDir('cli');
  await exec('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', dist], { cwd: repo }).catch(() => undefined); // type errors elsewhere still emit
  await symlink(join(repo, 'node_modules'), join(dist, 'node_modules'));
  await writeFile(join(dist, 'bin.mjs'), "import { run } from './src/cli/main.js';\nrun();\n");
  const s = await newStore();
  root = s.root;
  await buildBusybox(s.store);
  ctx = await makeContext({ Dockerfile: 'FROM busybox:local\nCOPY files /files\nRUN ls -R /files | wc -l > /count\n' });
  for (let d = 0; d < 30; d++) {
    const sub = join(ctx, 'files', `d${d}`);
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < 1000; f += 250) await Promise.all(Array.from({ length: 250 }, (_, k) => writeFile(join(sub, `f${f + k}`), `${d}/${f + k}`)));
  }
}, 600_000);

afterAll(async () => {
  for (const dir of [dist, root, ctx]) await rm(dir, { recursive: true, force: true });
});

interface JsonEvent {
  type: string;
  text?: string;
  context?: { filesRead: number; memoHits: number };
}

async function cliBuild(): Promise<JsonEvent[]> {
  const { stdout } = await exec('node', [join(dist, 'bin.mjs'), '--root', root, 'build', '--progress', 'json', ctx], {
    cwd: repo,
    maxBuffer: 64 << 20,
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  return stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as JsonEvent);
}

describe('cache across processes', () => {
  it('a second CLI process reuses the first one\'s cache and reads no context file', async () => {
    const cold = await cliBuild();
    expect(cold.find((e) => e.type === 'build-done')?.context).toEqual({ filesRead: 30_000, memoHits: 0 });
    expect(cold.filter((e) => e.type === 'step-cached')).toHaveLength(0);
    const warm = await cliBuild();
    expect(warm.find((e) => e.type === 'build-done')?.context).toEqual({ filesRead: 0, memoHits: 30_000 });
    expect(warm.filter((e) => e.type === 'step-cached')).toHaveLength(2);
  }, 600_000);
});
