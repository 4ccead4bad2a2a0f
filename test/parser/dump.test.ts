import { describe, expect, it } from 'vitest';
import { dumpBuildkit } from '../../src/parser/index.js';
import { goQuote } from '../../src/parser/gostr.js';

describe('dumpBuildkit edge cases', () => {
  const cases: [string, string][] = [
    ['FOO bar baz', '(foo "")'],
    ['CMD', '(cmd)'],
    ['HEALTHCHECK', '(healthcheck)'],
    ['ONBUILD COPY --from=a . /', '(onbuild (copy ["--from=a"] "." "/"))'],
    ['ONBUILD', '(onbuild)'],
    ['ENV A=1 B', 'ERROR'],
    ['ARG a="x y" b', '(arg "a=\\"x y\\"" "b")'],
    ['RUN <<EOF\nbody\nEOF', '(run "<<EOF")'],
    ['ENV C x\\\\\nENV D y', '(env "C" "x\\\\\\\\" "")\n(env "D" "y" "")'],
    ['RUN a \\\n  \\\n  b', '(run "a     b")'],
    ['RUN a \\\n  # c \\\n  b', '(run "a   b")'],
    ['CMD ["\\u00a0", "\\u0007", "é"]', '(cmd "\\u00a0" "\\a" "é")'],
    ['COPY --chown="a b" x y', '(copy ["--chown=a b"] "x" "y")'],
    ['run   lower', '(run "lower")'],
  ];
  it.each(cases)('%j', (text, expected) => {
    let got: string;
    try {
      got = dumpBuildkit(text).trimEnd();
    } catch {
      got = 'ERROR';
    }
    expect(got).toBe(expected);
  });
});

describe('goQuote (strconv.Quote)', () => {
  it.each([
    ['plain', '"plain"'],
    ['tab\tnl\n', '"tab\\tnl\\n"'],
    ['\x00\x7f', '"\\x00\\x7f"'],
    ['\u00ad\u2028', '"\\u00ad\\u2028"'],
    ['😀 ☃', '"😀 ☃"'],
    ['\u{e0001}', '"\\U000e0001"'],
  ])('%j', (s, q) => {
    expect(goQuote(s)).toBe(q);
  });
});
