import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { BuildEvent } from '../../src/builder/events.js';
import { build, type BuildRequest, type BuildResult } from '../../src/builder/execute.js';
import { RootfsView } from '../../src/builder/rootfs.js';
import type { ImageConfig, Manifest } from '../../src/image/index.js';
import { openStore, type Store } from '../../src/store/index.js';

export const BUSYBOX_DOCKERFILE = new URL('../../fixtures/busybox/Dockerfile', import.meta.url).pathname;

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `tsbuild-${prefix}-`));
}

/** A context dir holding the given files (path → content). */
export async function makeContext(files: Record<string, string>): Promise<string> {
  const dir = await tempDir('ctx');
  const { mkdir } = await import('node:fs/promises');
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}

/** Builds the busybox base image from Debian's busybox-static with tsbuild itself (FROM scratch). */
export async function buildBusybox(store: Store, tag = 'docker.io/library/busybox:local'): Promise<BuildResult> {
  const ctx = await tempDir('bbctx');
  try {
    await copyFile(BUSYBOX_DOCKERFILE, join(ctx, 'Dockerfile'));
    await copyFile('/bin/busybox', join(ctx, 'busybox'));
    return await build({ contextDir: ctx, tags: [tag] }, { store });
  } finally {
    await rm(ctx, { recursive: true, force: true });
  }
}

export async function runBuild(store: Store, request: BuildRequest): Promise<{ result: BuildResult; events: BuildEvent[] }> {
  const events: BuildEvent[] = [];
  const result = await build(request, { store }, { onEvent: (e) => events.push(e) });
  return { result, events };
}

export async function newStore(): Promise<{ store: Store; root: string }> {
  const root = await tempDir('store');
  return { store: await openStore(root), root };
}

export async function imageOf(store: Store, manifestDigest: string): Promise<{ manifest: Manifest; config: ImageConfig; view: RootfsView }> {
  const manifest = await store.blobs.readJson<Manifest>(manifestDigest as Manifest['config']['digest']);
  const config = await store.blobs.readJson<ImageConfig>(manifest.config.digest);
  const view = new RootfsView([...config.rootfs.diff_ids].reverse().map((d) => store.snapshots.path(d)));
  return { manifest, config, view };
}

export async function readInImage(view: RootfsView, path: string): Promise<string | undefined> {
  const { readFile } = await import('node:fs/promises');
  const { entry } = await view.resolve(path, true);
  return entry === undefined ? undefined : readFile(entry.hostPath, 'utf8');
}

export function mountsSnapshot(): Promise<string> {
  return import('node:fs/promises').then((fs) => fs.readFile('/proc/mounts', 'utf8'));
}

export interface BusyboxStoreFixture {
  /** A fresh store holding the busybox base (set in beforeAll). */
  store: Store;
  root: string;
  base: BuildResult;
  /** Dirs removed after the file's tests. */
  cleanup: string[];
  /** A context dir holding `files`, removed after the file's tests. */
  ctx: (files: Record<string, string>) => Promise<string>;
}

/**
 * The common setup of the builder suites: one store per test file with busybox built into it,
 * and every temp dir the file makes removed afterwards. Fields are filled in beforeAll.
 */
export function useBusyboxStore(): BusyboxStoreFixture {
  const cleanup: string[] = [];
  const fx = {
    cleanup,
    ctx: async (files: Record<string, string>): Promise<string> => {
      const dir = await makeContext(files);
      cleanup.push(dir);
      return dir;
    },
  } as BusyboxStoreFixture;
  beforeAll(async () => {
    ({ store: fx.store, root: fx.root } = await newStore());
    fx.cleanup.push(fx.root);
    fx.base = await buildBusybox(fx.store);
  });
  afterAll(async () => {
    for (const dir of fx.cleanup) await rm(dir, { recursive: true, force: true });
  });
  return fx;
}

/** What the build's RUN steps printed, in order. */
export function logOf(events: BuildEvent[]): string {
  return events.flatMap((e) => (e.type === 'step-log' ? [e.data] : [])).join('');
}

/** The error a build (or any promise) rejects with; a success fails the test. */
export async function failure(p: Promise<unknown>): Promise<{ code?: string; message: string; line?: number; hint?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string; line?: number; hint?: string };
  }
  throw new Error('the build succeeded');
}
