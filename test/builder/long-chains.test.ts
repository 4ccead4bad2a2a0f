/**
 * Long and deep Dockerfiles without recursion: 20,000 chained stages plan and build (the stage
 * walk and the build loop overflowed the JS stack from about 2,000), a stage reached only through
 * an ONBUILD trigger starts its long chain the same way, cycles are still named, and `${…}` nested
 * past the lexer's bound is a clear Dockerfile error.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/execute.js';
import { planBuild } from '../../src/builder/plan.js';
import { DockerfileError, expandWord, parseDockerfile } from '../../src/parser/index.js';
import { MAX_SUBSTITUTION_DEPTH } from '../../src/parser/shell/lex.js';
import type { Store } from '../../src/store/index.js';
import { imageOf, makeContext, newStore, readInImage } from './helpers.js';

const N = 20_000;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
/** `FROM scratch AS s0`, `FROM s0 AS s1`, … `FROM s{n-2} AS s{n-1}`, after `head` in the first stage. */
const fromChain = (n: number, head = ''): string => `FROM scratch AS s0\n${head}${range(n - 1).map((i) => `FROM s${i} AS s${i + 1}\n`).join('')}`;

let store: Store;
let root: string;
const cleanup: string[] = [];

beforeAll(async () => {
  ({ store, root } = await newStore());
  cleanup.push(root);
});
afterAll(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

describe('planning long stage graphs', () => {
  it(`a chain of ${N} FROM stages plans in order, one wave per stage`, () => {
    const plan = planBuild(parseDockerfile(fromChain(N)));
    expect(plan.stagesToBuild).toEqual(range(N));
    expect(plan.parallelGroups).toHaveLength(N);
    expect(plan.stages[N - 1]?.dependencies).toEqual([N - 2]);
  });

  it(`a chain of ${N} COPY --from pointing forward: the target needs all, built last-first`, () => {
    const text = range(N).map((i) => `FROM scratch AS s${i}\n${i < N - 1 ? `COPY --from=s${i + 1} /a /a\n` : ''}`).join('');
    const plan = planBuild(parseDockerfile(text), { target: 's0' });
    expect(plan.stagesToBuild).toEqual(range(N).reverse());
    // Lowest index first among ready stages, as before: two independent chains interleave by index.
    const two = planBuild(parseDockerfile('FROM scratch AS a\nFROM scratch AS b\nCOPY --from=d / /\nFROM a AS c\nFROM scratch AS d\nFROM c\nCOPY --from=b / /\n'));
    expect(two.stagesToBuild).toEqual([0, 2, 3, 1, 4]);
  });

  it(`a cycle through ${N} stages is an error naming the stage the walk came back to`, () => {
    const text = range(N).map((i) => `FROM scratch AS s${i}\nCOPY --from=s${(i + 1) % N} /a /a\n`).join('');
    expect(() => planBuild(parseDockerfile(text))).toThrow(new RegExp(`^circular dependency detected on stage: s${N - 1}$`));
  });
});

describe('building long stage graphs', () => {
  it(`a chain of ${N} FROM stages builds; its image is the first stage's`, async () => {
    const ctx = await makeContext({ Dockerfile: fromChain(N, 'COPY a.txt /a.txt\n'), 'a.txt': 'from s0\n' });
    cleanup.push(ctx);
    const result = await build({ contextDir: ctx, tags: ['docker.io/library/chain:long'] }, { store });
    const { manifest, view } = await imageOf(store, result.manifestDigest);
    expect(manifest.layers).toHaveLength(1);
    expect(await readInImage(view, '/a.txt')).toBe('from s0\n');
  });

  it('a stage only an ONBUILD trigger names starts its 2,000-stage chain without recursion', async () => {
    const base = await makeContext({ Dockerfile: 'FROM scratch\nONBUILD COPY --from=s1999 /a.txt /from-trigger.txt\n' });
    cleanup.push(base);
    await build({ contextDir: base, tags: ['docker.io/library/trigger:1'] }, { store });
    const ctx = await makeContext({ Dockerfile: `${fromChain(2000, 'COPY a.txt /a.txt\n')}FROM trigger:1\n`, 'a.txt': 'through the trigger\n' });
    cleanup.push(ctx);
    const result = await build({ contextDir: ctx }, { store });
    const { view } = await imageOf(store, result.manifestDigest);
    expect(await readInImage(view, '/from-trigger.txt')).toBe('through the trigger\n');
  });
});

describe('nested substitutions', () => {
  const nested = (depth: number): string => `${'${a:-'.repeat(depth)}x${'}'.repeat(depth)}`;

  it(`${MAX_SUBSTITUTION_DEPTH} levels expand; one more is a Dockerfile error saying so`, () => {
    expect(expandWord(nested(MAX_SUBSTITUTION_DEPTH), new Map())).toBe('x');
    let error: unknown;
    try {
      expandWord(nested(MAX_SUBSTITUTION_DEPTH + 1), new Map());
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DockerfileError);
    expect((error as DockerfileError).message).toMatch(new RegExp(`: variable substitutions nested more than ${MAX_SUBSTITUTION_DEPTH} levels deep$`));
    // Far deeper (it used to overflow the stack near 3,000) gives the same error, not a RangeError.
    expect(() => expandWord(nested(50_000), new Map())).toThrow(/nested more than/);
  });
});
