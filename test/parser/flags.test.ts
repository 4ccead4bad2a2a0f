/** Every instruction's flags, valid and invalid, and the expansion forms not covered elsewhere. */
import { describe, expect, it } from 'vitest';
import { expandWord, expandWords, parseDockerfile, type Instruction } from '../../src/parser/index.js';

function one(line: string): Instruction {
  const inst = parseDockerfile(`FROM scratch\n${line}\n`).stages[0]?.instructions[0];
  if (inst === undefined) throw new Error('no instruction');
  return inst;
}

describe('flags accepted per instruction', () => {
  const ok: [string, Record<string, unknown>][] = [
    ['ADD --link --chmod=0755 a /b', { kind: 'ADD', link: true, chmod: '0755' }],
    ['ADD --unpack=true x.tar /y', { unpack: true }],
    ['ADD --keep-git-dir=FALSE git@x:y.git /src', { keepGitDir: false }],
    ['ADD --exclude=a --exclude=b . /c', { exclude: ['a', 'b'] }],
    ['COPY --parents=false a /b', { parents: false }],
    ['COPY --link=TRUE a /b', { link: true }],
    ['COPY --chown="app user" a /b', { chown: 'app user' }],
    ['COPY --chmod=u+rwx a /b', { chmod: 'u+rwx' }],
    ['COPY --from=0 a /b', { from: '0' }],
    ['RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/t true', { mounts: [{ type: 'cache', target: '/a' }, { type: 'tmpfs', target: '/t' }] }],
    ['RUN --network=host true', { network: 'host' }],
    ['RUN --security=sandbox true', { security: 'sandbox' }],
    ['RUN -- --not-a-flag', { command: '--not-a-flag' }],
    ['HEALTHCHECK --start-interval=500ms CMD true', { startInterval: '500ms' }],
    ['HEALTHCHECK --interval=1h30m CMD true', { interval: '1h30m' }],
    ['HEALTHCHECK --retries=+3 CMD true', { retries: 3 }],
    ['STOPSIGNAL --anything SIGKILL', { signal: 'SIGKILL' }],
  ];
  it.each(ok)('%s', (line, expected) => {
    expect(one(line)).toMatchObject(expected);
  });
});

describe('flags rejected per instruction', () => {
  const bad: [string, RegExp][] = [
    ['ADD --from=x a /b', /unknown flag: from/],
    ['ADD --checksum a /b', /missing a value on flag: checksum/],
    ['ADD --keep-git-dir=maybe a /b', /expecting boolean value for flag keep-git-dir, not: maybe/],
    ['ADD --lnk a /b', /unknown flag: lnk \(did you mean link\?\)/],
    ['COPY --exclud=x a /b', /unknown flag: exclud \(did you mean exclude\?\)/],
    ['COPY --chmod a /b', /missing a value on flag: chmod/],
    ['COPY --parents=yes a /b', /expecting boolean value for flag parents, not: yes/],
    ['RUN --network true', /missing a value on flag: network/],
    ['RUN --netwrok=none true', /unknown flag: netwrok \(did you mean network\?\)/],
    ['RUN --mount true', /missing a value on flag: mount/],
    ['RUN --security=insecure --security=sandbox true', /duplicate flag specified: security/],
    ['CMD --x ["a"]', /unknown flag: x/],
    ['ENTRYPOINT --x a', /unknown flag: x/],
    ['LABEL --x a=b', /unknown flag: x/],
    ['EXPOSE --x 80', /unknown flag: x/],
    ['USER --x app', /unknown flag: x/],
    ['VOLUME --x /a', /unknown flag: x/],
    ['SHELL --x ["sh"]', /unknown flag: x/],
    ['MAINTAINER --x me', /unknown flag: x/],
    ['ONBUILD --x RUN a', /unknown flag: x/],
    ['FROM --platfrom=linux/amd64 a', /unknown flag: platfrom \(did you mean platform\?\)/],
    ['FROM --platform a', /missing a value on flag: platform/],
    ['HEALTHCHECK --intervall=5s CMD true', /unknown flag: intervall \(did you mean interval\?\)/],
    ['HEALTHCHECK --retries=2147483648 CMD true', /invalid syntax/],
    ['HEALTHCHECK --timeout=5 CMD true', /missing unit in duration/],
    ['HEALTHCHECK --interval=5s --interval=6s CMD true', /duplicate flag specified: interval/],
  ];
  it.each(bad)('%s', (line, re) => {
    expect(() => one(line)).toThrow(re);
  });
});

describe('expansion forms', () => {
  const env = { V: 'foo/bar/baz.tar.gz', E: '', N: 'x y', P: '/usr/local' };
  const cases: [string, string][] = [
    ["'$V'", '$V'],
    ["'a\\b'", 'a\\b'],
    ['"${V}"', 'foo/bar/baz.tar.gz'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$V$P', 'foo/bar/baz.tar.gz/usr/local'],
    ['${V:-}', 'foo/bar/baz.tar.gz'],
    ['${U:-}', ''],
    ['${V:+${P}/x}', '/usr/local/x'],
    ['${V%/*}', 'foo/bar'],
    ['${V#foo}', '/bar/baz.tar.gz'],
    ['${V#nomatch}', 'foo/bar/baz.tar.gz'],
    ['${V//o/}', 'f/bar/baz.tar.gz'],
    ['${V/?/X}', 'Xoo/bar/baz.tar.gz'],
    ['${P:-"quoted default"}', '/usr/local'],
    ['${U:-"a b"}', 'a b'],
    ['x\\$V', 'x$V'],
    ['"a\'b"', "a'b"],
    ['${V//*/x}', 'x'],
    ['${E//*/x}', 'x'],
    ['${V//?/.}', '..................'],
    ['${V/o*/}', 'f'],
    ['${V#*o}', 'o/bar/baz.tar.gz'],
    ['${V##*o}', '/bar/baz.tar.gz'],
    ['${V%a*}', 'foo/bar/baz.t'],
    ['${V%%a*}', 'foo/b'],
    ['${V/\\*/x}', 'foo/bar/baz.tar.gz'],
    ["'a\"b'", 'a"b'],
  ];
  it.each(cases)('%s', (word, expected) => {
    expect(expandWord(word, env)).toBe(expected);
  });

  it('word splitting keeps quoted defaults together', () => {
    expect(expandWords('${U:-a b} "${U:-c d}"', env)).toEqual(['a', 'b', 'c d']);
    expect(expandWords('$E x', env)).toEqual(['x']);
    // BuildKit drops a word that expands to nothing, quoted or not.
    expect(expandWords('"$E" x', env)).toEqual(['x']);
  });

  it('the backtick escape directive applies to expansion', () => {
    expect(expandWord('`$V', env, { escape: '`' })).toBe('$V');
    expect(expandWord('a\\b', env, { escape: '`' })).toBe('a\\b');
  });
});
