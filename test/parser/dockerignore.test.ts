import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanPath, createIgnoreMatcher, findDockerignore, parseDockerignore } from '../../src/parser/index.js';

describe('parseDockerignore', () => {
  it('cleans patterns, drops comments and blanks, keeps exclusions', () => {
    const text = '\ufeff# comment\n\n  node_modules/  \n/build\n!build/keep\n./a/../b\n  # not a comment\n! spaced \n';
    expect(parseDockerignore(text)).toEqual([
      { pattern: 'node_modules', exclusion: false },
      { pattern: 'build', exclusion: false },
      { pattern: 'build/keep', exclusion: true },
      { pattern: 'b', exclusion: false },
      { pattern: '# not a comment', exclusion: false },
      { pattern: 'spaced', exclusion: true },
    ]);
  });
  it('takes 100,000 patterns and refuses one more, naming the file', () => {
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `p${i}`).join('\n');
    expect(parseDockerignore(lines(100_000))).toHaveLength(100_000);
    expect(() => parseDockerignore(lines(100_001))).toThrow(/more than 100000 patterns/);
    try {
      parseDockerignore(lines(100_001));
    } catch (err) {
      expect(err).toMatchObject({ file: '.dockerignore' });
    }
  });
  it('rejects a lone !', () => {
    expect(() => parseDockerignore('!\n')).toThrow(/illegal exclusion pattern/);
  });
  it.each([['a/./b/../c', 'a/c'], ['/x/', '/x'], ['', '.'], ['../a', '../a'], ['/..', '/']])('cleanPath(%s) = %s', (p, c) => {
    expect(cleanPath(p)).toBe(c);
  });
});

describe('ignore matching (moby/patternmatcher)', () => {
  const table: [string, string, boolean][] = [
    ['*.log', 'a.log', true],
    ['*.log', 'dir/a.log', false],
    ['**/*.log', 'dir/sub/a.log', true],
    ['**/*.log', 'a.log', true],
    ['dir', 'dir/file', true],
    ['dir', 'dir/sub/file', true],
    ['dir/**', 'dir/x/y', true],
    ['dir/**/x', 'dir/x', true],
    ['dir/**/x', 'dir/a/b/x', true],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['[ab]*', 'bz', true],
    ['[!a]*', 'bz', false], // passed to the regex as is: a class of '!' and 'a'
    ['[^a]*', 'az', false],
    ['file.txt', 'fileXtxt', false],
    ['**', 'anything/at/all', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['.git', '.git/HEAD', true],
    ['*/temp*', 'somedir/temporary.txt', true],
    ['temp?', 'temp1', true],
  ];
  it.each(table)('%s vs %s → %s', (pattern, path, expected) => {
    expect(createIgnoreMatcher(parseDockerignore(pattern)).ignores(path)).toBe(expected);
  });

  it('exceptions: last match wins, re-inclusion below an ignored dir', () => {
    const m = createIgnoreMatcher(parseDockerignore('*.md\n!README.md\ndocs\n!docs/keep.md\n'));
    expect(m.ignores('CHANGES.md')).toBe(true);
    expect(m.ignores('README.md')).toBe(false);
    expect(m.ignores('docs/other.txt')).toBe(true);
    expect(m.ignores('docs/keep.md')).toBe(false);
    expect(m.mayMatchInside('docs')).toBe(true);
    expect(m.mayMatchInside('src')).toBe(false);
  });
  it('without exclusions nothing inside an ignored dir can come back', () => {
    const m = createIgnoreMatcher(parseDockerignore('node_modules\n'));
    expect(m.mayMatchInside('node_modules')).toBe(false);
    const m2 = createIgnoreMatcher(parseDockerignore('*\n!**/*.go\n'));
    expect(m2.mayMatchInside('deep/dir')).toBe(true);
  });
  it('rejects malformed patterns', () => {
    expect(() => createIgnoreMatcher(parseDockerignore('[abc\n'))).toThrow(/syntax error in pattern/);
  });
});

describe('findDockerignore', () => {
  let dir = '';
  afterEach(async () => { if (dir !== '') await rm(dir, { recursive: true, force: true }); });

  it('prefers <Dockerfile>.dockerignore, then <context>/.dockerignore', async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-ignore-'));
    const df = join(dir, 'build', 'app.Dockerfile');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'build'));
    expect(await findDockerignore(df, dir)).toBeUndefined();
    await writeFile(join(dir, '.dockerignore'), 'x\n');
    expect(await findDockerignore(df, dir)).toBe(join(dir, '.dockerignore'));
    await writeFile(`${df}.dockerignore`, 'y\n');
    expect(await findDockerignore(df, dir)).toBe(`${df}.dockerignore`);
  });
  it('honours an aborted signal', async () => {
    await expect(findDockerignore('/nope/Dockerfile', '/nope', { signal: AbortSignal.abort() })).rejects.toThrow();
  });
});

describe('patterns compiled without the u flag', () => {
  it('`?` is one character, a surrogate pair included; `*` never crosses a slash', () => {
    const m = createIgnoreMatcher(parseDockerignore('a?b\nx*y\n'));
    expect(m.ignores('a😀b')).toBe(true);
    expect(m.ignores('aéb')).toBe(true);
    expect(m.ignores('a/b')).toBe(false);
    expect(m.ignores('x😀😀y')).toBe(true);
    expect(m.ignores('x/y')).toBe(false);
  });
});
