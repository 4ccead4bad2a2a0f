import { describe, expect, it } from 'vitest';
import { DockerfileError, expandWord, expandWordWithMatches, expandWords } from '../../src/parser/index.js';

const env = new Map([
  ['V', 'foo/bar/baz.tar.gz'],
  ['E', ''],
  ['N', 'x y'],
  ['P', '/usr/local'],
]);

describe('expandWord: every form', () => {
  const cases: [string, string][] = [
    ['$V', 'foo/bar/baz.tar.gz'],
    ['${V}', 'foo/bar/baz.tar.gz'],
    ['${U:-def}', 'def'],
    ['${E:-def}', 'def'],
    ['${E-def}', ''],
    ['${U-def}', 'def'],
    ['${V:+alt}', 'alt'],
    ['${E:+alt}', ''],
    ['${E+alt}', 'alt'],
    ['${U+alt}', ''],
    ['${V:?boom}', 'foo/bar/baz.tar.gz'],
    ['${E?msg}', ''],
    ['${V#*/}', 'bar/baz.tar.gz'],
    ['${V##*/}', 'baz.tar.gz'],
    ['${V%.*}', 'foo/bar/baz.tar'],
    ['${V%%.*}', 'foo/bar/baz'],
    ['${V/bar/qux}', 'foo/qux/baz.tar.gz'],
    ['${V//a/A}', 'foo/bAr/bAz.tAr.gz'],
    ['${V/\\/b/X}', 'fooXar/baz.tar.gz'],
    ['${V/b*z/Q}', 'foo/Q'], // longest match, like bash
    ['${P}/bin', '/usr/local/bin'],
    ['"$N"', 'x y'],
    ["'$N'", '$N'],
    ['\\$N', '$N'],
    ['a\\ b', 'a b'],
    ['"a\\"b"', 'a"b'],
    ['${U:-${P}}', '/usr/local'],
    ['$1x', 'x'],
  ];
  it.each(cases)('%s → %s', (word, expected) => {
    expect(expandWord(word, env)).toBe(expected);
  });

  const errors: [string, RegExp][] = [
    ['${U:?is required}', /U: is required/],
    ['${U?}', /U: is not allowed to be unset/],
    ['${E:?}', /E: is not allowed to be empty/],
    ['${V', /missing '}'|unsupported modifier/],
    ['${}', /bad substitution/],
    ['${V:=x}', /unsupported modifier \(:=\)/],
    ['${V:#x}', /unsupported modifier \(:#\)/],
    ['"open', /double-quote/],
    ["'open", /single-quote/],
    ['${V/a', /missing '\/' in \$\{\}/],
  ];
  it.each(errors)('%s fails', (word, msg) => {
    expect(() => expandWord(word, env)).toThrow(DockerfileError);
    expect(() => expandWord(word, env)).toThrow(msg);
  });
});

describe('expandWords and options', () => {
  it('splits after expansion, keeping quoted blanks', () => {
    expect(expandWords('a $N "b c"', env)).toEqual(['a', 'x', 'y', 'b c']);
  });
  it('honours the backtick escape', () => {
    expect(expandWord('a`$V', env, { escape: '`' })).toBe('a$V');
    expect(expandWord('C:\\dir', env, { escape: '`' })).toBe('C:\\dir');
  });
  it('accepts a plain record environment', () => {
    expect(expandWord('$A-$B', { A: '1', B: '2' })).toBe('1-2');
  });
  it('can leave unset variables as written', () => {
    expect(expandWord('$U ${U} ${U:-x} $V', env, { skipUnsetEnv: true })).toBe('$U ${U} ${U:-x} foo/bar/baz.tar.gz');
  });
  it('reports matched and unmatched variables', () => {
    const r = expandWordWithMatches('$V ${U:-$P} $E', env);
    expect(r.result).toBe('foo/bar/baz.tar.gz /usr/local ');
    expect([...r.matched].sort()).toEqual(['E', 'P', 'V']);
    expect([...r.unmatched]).toEqual(['U']);
  });
  it('errors carry no location until the builder adds one', () => {
    try {
      expandWord('${X:?need X}', env);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DockerfileError);
      const located = (e as DockerfileError).withLocation({ file: 'Dockerfile', line: 7 });
      expect(located.line).toBe(7);
      expect(located.message).toMatch(/need X/);
    }
  });
});
