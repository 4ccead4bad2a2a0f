/** Issue 3: every Dockerfile error names file, line, column, shows the line with a caret, and suggests a fix where one exists. */
import { describe, expect, it } from 'vitest';
import { planBuild } from '../../src/builder/plan.js';
import { formatError } from '../../src/cli/exit.js';
import { checkDockerfile, DockerfileError, parseDockerfile } from '../../src/parser/index.js';

interface Case {
  name: string;
  text: string;
  via: 'parse' | 'plan' | 'check';
  target?: string;
  message: RegExp;
  line: number;
  column: number;
  excerpt: string;
  suggestion?: string;
  hint?: RegExp;
}

const cases: Case[] = [
  { name: 'empty file', text: '', via: 'parse', message: /^file with no instructions$/, line: 1, column: 1, excerpt: '', hint: /FROM/ },
  { name: 'comments only', text: '# just a comment\n\n', via: 'parse', message: /^file with no instructions$/, line: 1, column: 1, excerpt: '# just a comment', hint: /FROM/ },
  { name: 'no FROM', text: 'RUN x\nFROM a\n', via: 'parse', message: /^no build stage in current context$/, line: 1, column: 1, excerpt: 'RUN x', hint: /must be FROM/ },
  { name: 'unknown instruction', text: 'FROM a\n  RUNN echo\n', via: 'parse', message: /^unknown instruction: RUNN \(did you mean RUN\?\)$/, line: 2, column: 3, excerpt: '  RUNN echo', suggestion: 'RUN' },
  { name: 'unknown instruction, lower case', text: 'from a\ncopi . /\n', via: 'parse', message: /unknown instruction: copi/, line: 2, column: 1, excerpt: 'copi . /', suggestion: 'copy' },
  { name: 'unknown flag', text: 'FROM a\nCOPY --form=b x y\n', via: 'parse', message: /^unknown flag: form \(did you mean from\?\)$/, line: 2, column: 6, excerpt: 'COPY --form=b x y', suggestion: 'from' },
  { name: 'flag without value', text: 'FROM a\nCOPY --chown=1 --from x y\n', via: 'parse', message: /^missing a value on flag: from$/, line: 2, column: 16, excerpt: 'COPY --chown=1 --from x y' },
  { name: 'bad boolean flag', text: 'FROM a\nCOPY --link=maybe a b\n', via: 'parse', message: /expecting boolean value for flag link, not: maybe/, line: 2, column: 6, excerpt: 'COPY --link=maybe a b' },
  { name: 'duplicate flag', text: 'FROM a\nRUN --network=none --network=host true\n', via: 'parse', message: /duplicate flag specified: network/, line: 2, column: 5, excerpt: 'RUN --network=none --network=host true' },
  { name: 'malformed mount', text: 'FROM a\nRUN --mount=type=cahce,target=/x true\n', via: 'parse', message: /unsupported mount type "cahce" \(did you mean cache\?\)/, line: 2, column: 5, excerpt: 'RUN --mount=type=cahce,target=/x true', suggestion: 'cache' },
  { name: 'bad mount option', text: 'FROM a\nRUN --network=none --mount=type=tmpfs,target=/t,size=huge true\n', via: 'parse', message: /invalid size: 'huge'/, line: 2, column: 20, excerpt: 'RUN --network=none --mount=type=tmpfs,target=/t,size=huge true' },
  { name: 'bad healthcheck interval', text: 'FROM a\nHEALTHCHECK --interval=10us CMD true\n', via: 'parse', message: /Interval "interval" cannot be less than 1ms/, line: 2, column: 13, excerpt: 'HEALTHCHECK --interval=10us CMD true' },
  { name: 'JSON array with non-strings', text: 'FROM a\nCMD ["echo", 1]\n', via: 'parse', message: /arrays must be comprised of strings only/, line: 2, column: 5, excerpt: 'CMD ["echo", 1]' },
  { name: 'unterminated heredoc', text: 'FROM a\nRUN cat <<EOF\nhello\n', via: 'parse', message: /^unterminated heredoc$/, line: 2, column: 9, excerpt: 'RUN cat <<EOF\nhello' },
  { name: 'bad escape directive', text: '# escape=x\nFROM a\n', via: 'parse', message: /invalid escape token 'x'/, line: 1, column: 10, excerpt: '# escape=x' },
  { name: 'repeated directive', text: '# escape=`\n# escape=\\\nFROM a\n', via: 'parse', message: /only one escape parser directive can be used/, line: 2, column: 3, excerpt: '# escape=\\' },
  { name: 'bad stage name', text: 'FROM a AS 1st\n', via: 'parse', message: /invalid name for build stage: "1st"/, line: 1, column: 11, excerpt: 'FROM a AS 1st' },
  { name: 'FROM arity', text: 'FROM a b\n', via: 'parse', message: /FROM requires either one or three arguments/, line: 1, column: 1, excerpt: 'FROM a b' },
  { name: 'bad ${ in FROM', text: 'FROM alpine:${TAG\n', via: 'plan', message: /failed to process "alpine:\$\{TAG": /, line: 1, column: 6, excerpt: 'FROM alpine:${TAG' },
  { name: 'bad ${ in ENV (check)', text: 'FROM a\nENV X=${Y:?}\n', via: 'check', message: /failed to process "\$\{Y:\?\}"/, line: 2, column: 7, excerpt: 'ENV X=${Y:?}' },
  { name: 'blank base name', text: 'ARG IMG=\nFROM $IMG\n', via: 'plan', message: /base name \(\$IMG\) should not be blank/, line: 2, column: 6, excerpt: 'FROM $IMG' },
  { name: 'unknown stage index', text: 'FROM a\nCOPY --from=3 / /\n', via: 'plan', message: /^invalid stage index 3$/, line: 2, column: 6, excerpt: 'COPY --from=3 / /' },
  { name: 'dependency cycle', text: 'FROM a AS x\nCOPY --from=y / /\nFROM a AS y\nCOPY --from=x / /\n', via: 'plan', message: /circular dependency detected on stage: y/, line: 3, column: 11, excerpt: 'FROM a AS y' },
  { name: 'bad platform', text: 'FROM --platform=linux//x a\n', via: 'plan', message: /failed to parse platform linux\/\/x/, line: 1, column: 6, excerpt: 'FROM --platform=linux//x a' },
];

function raise(c: Case): DockerfileError {
  try {
    if (c.via === 'parse') parseDockerfile(c.text);
    else if (c.via === 'plan') planBuild(parseDockerfile(c.text), c.target === undefined ? {} : { target: c.target });
    else checkDockerfile(c.text);
  } catch (e) {
    if (e instanceof DockerfileError) return e;
    throw e;
  }
  throw new Error(`${c.name}: no error`);
}

describe('DockerfileError coverage', () => {
  it.each(cases)('$name', (c) => {
    const e = raise(c);
    expect(e.code).toBe('DOCKERFILE');
    expect(e.message).toMatch(c.message);
    expect({ file: e.file, line: e.line, column: e.column, excerpt: e.excerpt, suggestion: e.suggestion }).toEqual({
      file: 'Dockerfile', line: c.line, column: c.column, excerpt: c.excerpt, suggestion: c.suggestion,
    });
    if (c.hint !== undefined) expect(e.hint).toMatch(c.hint);
    // The CLI shows the line and puts the caret under the column.
    const out = formatError(e, false);
    expect(out).toContain(` --> Dockerfile:${c.line}:${c.column}\n`);
    const lines = out.split('\n');
    const caret = lines.find((l) => /^ {7}\| +\^$/.test(l));
    expect(caret?.indexOf('^')).toBe('       | '.length + c.column - 1);
    if (c.suggestion !== undefined) expect(out).toContain(`(did you mean ${c.suggestion}?)`);
  });

  it('an unknown --target names the stages and suggests one', () => {
    const e = raise({ name: 't', text: 'FROM a AS build\nFROM b AS test\n', via: 'plan', target: 'biuld', message: /./, line: 0, column: 0, excerpt: '' });
    expect(e.message).toBe('target stage "biuld" could not be found (stages: build, test) (did you mean build?)');
    expect(e.suggestion).toBe('build');
  });

  it('the file name given is the one reported', () => {
    expect(() => parseDockerfile('FROM a\nBAD x\n', { file: 'ci/Dockerfile.dev' })).toThrow(expect.objectContaining({ file: 'ci/Dockerfile.dev', line: 2 }) as Error);
  });

  it('an instruction over several lines is shown line by line, the caret under the first, a long tail cut', () => {
    let thrown: unknown;
    try {
      parseDockerfile(`FROM a\nRUN <<EOF\n${Array.from({ length: 9 }, (_, i) => `line ${i}`).join('\n')}\n`);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(DockerfileError);
    expect(formatError(thrown, false)).toBe(
      [
        'error: unterminated heredoc',
        ' --> Dockerfile:2:5',
        '     2 | RUN <<EOF',
        '       |     ^',
        ...Array.from({ length: 5 }, (_, i) => `  ${String(3 + i).padStart(4)} | line ${i}`),
        '       | ... 4 more lines',
        '',
      ].join('\n'),
    );
  });
});
