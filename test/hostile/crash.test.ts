/**
 * Crash consistency: SIGKILL the real CLI at seeded random points of build, pull, push, save,
 * load and prune. After every kill the store must verify clean (`prune --verify`), the next run of
 * the same command must succeed, and afterwards no mount, process or staging debris may remain.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { appContext, busyboxContext, cli, requireCli, cliOk, eventually, mountsUnder, processesUnder, removeDir, seeded, startCli, tempDir, verify } from './helpers.js';

requireCli();

const RUNS = Number(process.env.TSBUILD_CRASH_RUNS ?? 3);
const SLOW = 300_000;
/** Big enough that the work, not node's start-up, dominates each command. */
const BIG = 16 << 20;
const rand = seeded(Number(process.env.TSBUILD_CRASH_SEED ?? 20261123));
const report: string[] = [];

let work: string;
let registry: RunningRegistry;
let base: string; // a store holding busybox:local and app:v1
let archive: string;

async function ageTree(dir: string, seconds: number): Promise<void> {
  const when = new Date(Date.now() - seconds * 1000);
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    await utimes(join(e.parentPath, e.name), when, when).catch(() => undefined);
  }
}

let startup: number | undefined;
/** How long the CLI takes to start and do nothing (killing earlier tests only node's start-up). */
async function startupMs(): Promise<number> {
  if (startup === undefined) {
    const t0 = Date.now();
    await cliOk(base, ['version']);
    startup = Date.now() - t0;
  }
  return startup;
}

/** The kill-verify-rerun cycle shared by every command. */
async function crashCycle(name: string, rootFor: (i: number) => Promise<string>, args: (i: number) => string[], before?: (root: string) => Promise<void>): Promise<void> {
  const probeRoot = await rootFor(-1);
  if (before) await before(probeRoot);
  const t0 = Date.now();
  await cliOk(probeRoot, args(-1)); // a clean run gives the typical duration
  const typical = Date.now() - t0;
  const startup = await startupMs();
  let survived = 0;
  let midWork = 0;
  for (let i = 0; i < RUNS; i++) {
    const root = await rootFor(i);
    if (before) await before(root);
    // Kill points mostly past node's start-up, where the command does its work.
    const lo = Math.min(startup * 0.8, typical * 0.4);
    const delay = Math.floor(lo + rand() * (0.9 * typical - lo)); // runs vary; most kills land mid-work
    const child = startCli(root, args(i));
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    const killed = await child.result;
    if (killed.signal === 'SIGKILL') midWork++;
    const phase = `${killed.stderr}${killed.stdout}`.trim().split('\n').pop()?.slice(0, 60) ?? '';

    const afterKill = await verify(root);
    expect(afterKill.output, `${name} run ${i} killed at ${delay}ms`).toMatch(/no problems/);
    expect(afterKill.ok).toBe(true);
    if (before) await before(root);
    await cliOk(root, args(i));
    expect(await eventually(() => mountsUnder(root), (m) => m.length === 0)).toEqual([]);
    expect(await eventually(() => processesUnder(root), (p) => p.length === 0)).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect((await verify(root)).ok).toBe(true);
    survived++;
    report.push(`${name} run ${i}: killed at ${delay}/${typical}ms (${killed.signal ?? `exit ${killed.code}`}) after "${phase}"`);
  }
  report.push(`${name}: ${RUNS} runs (${midWork} killed mid-work, the rest finished first), ${survived} survived`);
}


describe('SIGKILL at random points leaves a consistent store', () => {
  beforeAll(async () => {
    work = await tempDir('crash');
    registry = await startRegistry({ mode: 'open' });
    base = join(work, 'base');
    await cliOk(base, ['build', '--progress', 'plain', '-t', 'busybox:local', await busyboxContext(join(work, 'bbctx'))]);
    await cliOk(base, ['build', '--progress', 'plain', '-t', 'app:v1', await appContext(join(work, 'appctx'), 'a', 'busybox:local', BIG)]);
    await cliOk(base, ['push', '--insecure-registry', registry.host, 'app:v1', `${registry.host}/crash/app:v1`]);
    archive = join(work, 'app.tar');
    await cliOk(base, ['save', '-o', archive, 'app:v1']);
  });
  afterAll(async () => {
    console.log(`crash report (seed ${process.env.TSBUILD_CRASH_SEED ?? 20261123}):\n${report.join('\n')}`);
    await registry?.stop();
    await removeDir(work);
  });

  it('build (busybox base + RUN + COPY)', async () => {
    const ctx = join(work, 'appctx');
    await crashCycle('build', () => Promise.resolve(base), () => ['build', '--no-cache', '--progress', 'plain', '-t', 'app:v1', ctx]);
  }, SLOW);

  it('the next build cleans up after a killed one: stray step process and its work root', async () => {
    // What a builder killed before its launcher could clean up leaves: a staging dir named after
    // the dead pid holding a RUN work root whose sandbox.state lists a still-running step process.
    const stray = spawn('sleep', ['600'], { stdio: 'ignore' });
    const stat = await readFile(`/proc/${stray.pid}/stat`, 'utf8');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
    const dead = join(base, 'tmp', 'proc-999999-abcdef', 'run-999999-abcdef');
    await mkdir(dead, { recursive: true });
    await writeFile(join(dead, 'sandbox.state'), `launcher 999999 1\nchild ${stray.pid} ${start}\n`);
    const exited = new Promise((r) => stray.once('exit', r));
    expect((await verify(base)).output).toMatch(/leftover staging .*proc-999999-abcdef/); // kept for the sandbox to clean
    await cliOk(base, ['build', '--progress', 'plain', '-t', 'app:v1', join(work, 'appctx')]);
    await exited;
    expect(await readdir(join(base, 'tmp'))).toEqual([]);
    expect((await verify(base)).ok).toBe(true);
  }, SLOW);

  it('pull', async () => {
    await crashCycle('pull', (i) => Promise.resolve(join(work, `pull-${i}`)), () => ['pull', '--insecure-registry', registry.host, `${registry.host}/crash/app:v1`]);
  }, SLOW);

  it('push', async () => {
    await crashCycle('push', () => Promise.resolve(base), (i) => ['push', '--insecure-registry', registry.host, 'app:v1', `${registry.host}/crash/push${i + 1}:v1`]);
  }, SLOW);

  it('save', async () => {
    await crashCycle('save', () => Promise.resolve(base), (i) => ['save', '-o', join(work, `save-${i}.tar`), 'app:v1']);
    const r = await cliOk(join(work, 'reload'), ['load', '-i', join(work, `save-${RUNS - 1}.tar`)]);
    expect(r.stdout).toMatch(/Loaded image/);
  }, SLOW);

  it('load', async () => {
    await crashCycle('load', (i) => Promise.resolve(join(work, `load-${i}`)), () => ['load', '-i', archive]);
  }, SLOW);

  it('prune --all', async () => {
    const root = join(work, 'prune');
    // Something to collect each time: a second image, untagged, with every file aged past the grace period.
    const setup = async (r: string): Promise<void> => {
      if ((await cli(r, ['inspect', 'app:v1'])).code !== 0) {
        await cliOk(r, ['build', '--progress', 'plain', '-t', 'busybox:local', join(work, 'bbctx')]);
        await cliOk(r, ['build', '--progress', 'plain', '-t', 'app:v1', join(work, 'appctx')]);
      }
      await cliOk(r, ['build', '--progress', 'plain', '--no-cache', '-t', 'app:v2', await appContext(join(work, 'appctx2'), 'b', 'busybox:local', BIG)]);
      await cliOk(r, ['rmi', 'app:v2']);
      for (const d of ['blobs', 'snapshots']) await ageTree(join(r, d), 3600);
    };
    await crashCycle('prune', () => Promise.resolve(root), () => ['prune', '--all'], setup);
    expect((await cli(root, ['inspect', 'app:v1'])).code).toBe(0);
  }, SLOW);
});
