/**
 * The context stat memo file (src/store/memo.ts): exact answers whatever order lookups come in,
 * the last build's order written first, and a torn, truncated or foreign file read as empty.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoFile } from '../../src/store/memo.js';

let dir = '';
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-memo-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fileOf = (): string => join(dir, `m${n++}`);
const memoAt = (file: string): MemoFile => new MemoFile(file, (text) => writeFile(file, text));
const digest = (i: number): string => `sha256:${String(i).padStart(64, '0')}`;
const key = (i: number): string => `65024:${1000 + i}:4096:1795433966148271505:1795449447446151485`;

async function written(count: number): Promise<string> {
  const file = fileOf();
  const memo = memoAt(file);
  await memo.load();
  for (let i = 0; i < count; i++) memo.set(key(i), digest(i));
  await memo.flush();
  return file;
}

async function loaded(file: string): Promise<MemoFile> {
  const memo = memoAt(file);
  await memo.load();
  return memo;
}

describe('MemoFile', () => {
  it('round-trips entries in a headed, counted line file', async () => {
    const file = await written(3);
    const text = await readFile(file, 'utf8');
    expect(text.split('\n')).toEqual(['tsbuild-memo 1', `${key(0)}\t${digest(0)}`, `${key(1)}\t${digest(1)}`, `${key(2)}\t${digest(2)}`, 'end 3', '']);
    const memo = await loaded(file);
    expect([0, 1, 2].map((i) => memo.get(key(i)))).toEqual([digest(0), digest(1), digest(2)]);
    expect(memo.get(key(3))).toBeUndefined();
    expect(memo.get(`${key(1)}x`)).toBeUndefined();
    expect(memo.get(key(1).slice(0, -1))).toBeUndefined();
  });

  it('answers exactly in any order: in sequence, skipping, scanning and indexed', async () => {
    const file = await written(50);
    const memo = await loaded(file);
    const order = [0, 1, 3, 4, 40, 41, 2, 49, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 10, 5, 5, 48, 47, 46];
    expect(order.map((i) => memo.get(key(i)))).toEqual(order.map((i) => (i < 50 ? digest(i) : undefined)));
  });

  it('writes the order this build asked in first, then the rest, then new keys', async () => {
    const file = await written(5);
    const memo = await loaded(file);
    for (const i of [3, 1]) memo.get(key(i));
    expect(memo.get(key(9))).toBeUndefined();
    memo.set(key(9), digest(9));
    memo.get(key(0));
    memo.set(key(8), digest(8));
    memo.set(key(3), digest(33));
    await memo.flush();
    const keys = (await readFile(file, 'utf8')).split('\n').slice(1, -2).map((l) => l.split('\t') as [string, string]);
    expect(keys.map(([k]) => k)).toEqual([3, 1, 9, 0, 8, 2, 4].map(key));
    expect(Object.fromEntries(keys)[key(3)]).toBe(digest(33));
    const again = await loaded(file);
    expect([again.get(key(3)), again.get(key(4)), again.get(key(9))]).toEqual([digest(33), digest(4), digest(9)]);
  });

  it('does not rewrite the file when nothing changed, and a set of the same value is no change', async () => {
    const file = await written(2);
    const before = await readFile(file, 'utf8');
    const memo = await loaded(file);
    memo.get(key(1));
    memo.set(key(0), digest(0));
    await writeFile(file, before.replace(digest(1), digest(7)));
    await memo.flush();
    expect((await loaded(file)).get(key(1))).toBe(digest(7));
  });

  it('reads every truncation of a file, and a wrong count, as empty', async () => {
    const file = await written(4);
    const text = await readFile(file, 'utf8');
    for (let cut = 0; cut < text.length; cut++) {
      await writeFile(file, text.slice(0, cut));
      const memo = await loaded(file);
      expect([0, 1, 2, 3].map((i) => memo.get(key(i))), `cut at ${cut}`).toEqual([undefined, undefined, undefined, undefined]);
    }
    await writeFile(file, text.replace('end 4', 'end 5'));
    expect((await loaded(file)).get(key(0))).toBeUndefined();
    await writeFile(file, text.replace(`${key(1)}\t${digest(1)}\n`, ''));
    expect((await loaded(file)).get(key(0))).toBeUndefined();
    await writeFile(file, 'garbage\n');
    expect((await loaded(file)).get('garbage')).toBeUndefined();
  });

  it('reads the JSON object earlier versions wrote, and rewrites it as lines', async () => {
    const file = fileOf();
    await writeFile(file, JSON.stringify({ [key(0)]: digest(0), [key(1)]: digest(1), constructor: 5 }));
    const memo = await loaded(file);
    expect([memo.get(key(1)), memo.get(key(0)), memo.get('constructor'), memo.get('__proto__')]).toEqual([digest(1), digest(0), undefined, undefined]);
    memo.set(key(2), digest(2));
    await memo.flush();
    expect(await readFile(file, 'utf8')).toBe(`tsbuild-memo 1\n${key(1)}\t${digest(1)}\n${key(0)}\t${digest(0)}\n${key(2)}\t${digest(2)}\nend 3\n`);
    // Converted on the next flush even when nothing is new (a warm build's memo would stay JSON).
    const warm = fileOf();
    await writeFile(warm, JSON.stringify({ [key(0)]: digest(0) }));
    const again = await loaded(warm);
    expect(again.get(key(0))).toBe(digest(0));
    await again.flush();
    expect(await readFile(warm, 'utf8')).toBe(`tsbuild-memo 1\n${key(0)}\t${digest(0)}\nend 1\n`);
    await writeFile(file, '{"a": "sha');
    expect((await loaded(file)).get('a')).toBeUndefined();
  });

  it('keeps entries set before a second load until they are flushed', async () => {
    const file = await written(2);
    const memo = await loaded(file);
    memo.set(key(7), digest(7));
    await memo.load();
    expect(memo.get(key(7))).toBe(digest(7));
    await memo.flush();
    expect([(await loaded(file)).get(key(7)), (await loaded(file)).get(key(1))]).toEqual([digest(7), digest(1)]);
  });

  it('does not remember what a line cannot hold', async () => {
    const file = fileOf();
    const memo = memoAt(file);
    await memo.load();
    memo.set('a\tb', 'sha256:aa');
    memo.set('a\nb', 'sha256:aa');
    memo.set('c', 'sha256:a\na');
    memo.set('d', 'sha256:dd');
    await memo.flush();
    const again = await loaded(file);
    expect([again.get('a\tb'), again.get('a\nb'), again.get('c'), again.get('d')]).toEqual([undefined, undefined, undefined, 'sha256:dd']);
  });
});
