/**
 * The library API as a user imports it (src/index.ts): build into a store, push to a real
 * registry, pull into a second store, and read it back with inspect/history/images; AbortSignal
 * and typed errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, history, images, inspect, isTsbuildError, openStore, pull, push, type BuildEvent, type TransferEvent } from '../../src/index.js';
import { StaticAuth } from '../../src/registry/index.js';
import { startRegistry, type RunningRegistry } from '../services/index.js';
import { removeAll, tempDir, writeTree } from './helpers.js';

const dirs: string[] = [];
let reg: RunningRegistry;
let ctx: string;
let rootA: string;
let rootB: string;

beforeAll(async () => {
  reg = await startRegistry({ mode: 'open' });
  ctx = await tempDir('api-ctx');
  rootA = await tempDir('api-a');
  rootB = await tempDir('api-b');
  dirs.push(ctx, rootA, rootB);
  await writeTree(ctx, { Dockerfile: 'FROM scratch\nCOPY hello.txt /srv/hello.txt\nLABEL org.example=api\nCMD ["/srv/hello.txt"]\n', 'hello.txt': 'hi\n' });
});
afterAll(async () => {
  await reg.stop();
  await removeAll(dirs);
});

describe('library API', () => {
  it('build → push → pull → inspect/history/images', async () => {
    const events: BuildEvent[] = [];
    const built = await build({ contextDir: ctx, tags: ['app:v1'], root: rootA, onEvent: (e) => events.push(e) });
    expect(built.tags).toEqual(['docker.io/library/app:v1']);
    expect(events.at(-1)).toMatchObject({ type: 'build-done', manifestDigest: built.manifestDigest });

    const auth = new StaticAuth({});
    const pushedEvents: TransferEvent[] = [];
    const dest = `${reg.host}/team/app:v1`;
    const pushed = await push('app:v1', { root: rootA, destination: dest, auth, insecureRegistries: [reg.host], onEvent: (e) => pushedEvents.push(e) });
    expect(pushed.reference).toBe(dest);
    expect(pushed.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(pushedEvents.some((e) => e.phase === 'done')).toBe(true);

    const pulled = await pull(dest, { root: rootB, auth, insecureRegistries: [reg.host], platform: 'linux/amd64' });
    expect(pulled).toEqual({ name: dest, manifestDigest: pushed.digest, configDigest: built.configDigest });

    const store = await openStore(rootB);
    const info = await inspect(dest, { store });
    expect(info.Id).toBe(built.configDigest);
    expect(info.RepoTags).toEqual([dest]);
    expect(info.RepoDigests).toEqual([`${reg.host}/team/app@${pushed.digest}`]);
    expect(info.Config.Labels).toEqual({ 'org.example': 'api' });
    expect(info.Config.Cmd).toEqual(['/srv/hello.txt']);
    expect(info.RootFS.Layers).toHaveLength(1);

    const h = await history(dest, { root: rootB });
    expect(h.map((e) => [e.id, e.createdBy, e.emptyLayer])).toEqual([
      [built.configDigest, 'CMD ["/srv/hello.txt"]', true],
      ['<missing>', 'LABEL org.example=api', true],
      ['<missing>', 'COPY hello.txt /srv/hello.txt # buildkit', false],
    ]);
    expect(h[2]?.size).toBe(info.Manifest.layers[0]?.size);

    const list = await images({ root: rootB });
    expect(list).toMatchObject([{ name: dest, repository: `${reg.host}/team/app`, tag: 'v1', id: built.configDigest, manifestDigest: pushed.digest }]);
  });

  it('honours an aborted signal and reports typed errors', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    const aborted = await build({ contextDir: ctx, root: rootA, signal: controller.signal }).catch((e: unknown) => e);
    expect(isTsbuildError(aborted) && aborted.code).toBe('ABORTED');
    const missing = await inspect('nope:1', { root: rootA }).catch((e: unknown) => e);
    expect(isTsbuildError(missing) && missing.code).toBe('NOT_FOUND');
    const badRef = await pull('Not A Ref', { root: rootA }).catch((e: unknown) => e);
    expect(isTsbuildError(badRef) && badRef.code).toBe('REFERENCE');
  });
});
