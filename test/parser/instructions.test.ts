import { describe, expect, it } from 'vitest';
import { DockerfileError, parseDockerfile, parseRunMount, type Instruction } from '../../src/parser/index.js';
import { csvFields } from '../../src/parser/instructions/mount.js';

/** Parse one instruction placed after a FROM line. */
function one(line: string): Instruction {
  const df = parseDockerfile(`FROM scratch\n${line}\n`);
  const inst = df.stages[0]?.instructions[0];
  if (inst === undefined) throw new Error('no instruction');
  return inst;
}

describe('flags: accepted', () => {
  const ok: [string, Record<string, unknown>][] = [
    ['COPY --from=build --chown=1:2 --chmod=644 --link a b /dst/', { kind: 'COPY', from: 'build', chown: '1:2', chmod: '644', link: true, sources: ['a', 'b'], dest: '/dst/' }],
    ['COPY --parents --exclude=*.md --exclude=tmp . /app', { parents: true, exclude: ['*.md', 'tmp'] }],
    ['COPY --link=false a /b', { link: false }],
    ['ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.tar /z', { checksum: 'sha256:abc', keepGitDir: true, unpack: false }],
    ['ADD --chown=app --chmod=755 --exclude=x a /b', { chown: 'app', chmod: '755', exclude: ['x'] }],
    ['RUN --network=none --security=insecure echo hi', { network: 'none', security: 'insecure', form: 'shell', command: 'echo hi' }],
    ['RUN echo hi', { network: 'default', security: 'sandbox', mounts: [] }],
    ['HEALTHCHECK --interval=5s --timeout=3s --start-period=1m --start-interval=2s --retries=3 CMD curl -f x', {
      interval: '5s', timeout: '3s', startPeriod: '1m', startInterval: '2s', retries: 3, test: { form: 'shell', command: 'curl -f x' },
    }],
    ['HEALTHCHECK --timeout=0s --retries=0 CMD ["true"]', { timeout: '0s', retries: 0, test: { form: 'exec', command: ['true'] } }],
    ['HEALTHCHECK NONE', { test: 'NONE' }],
    ['COPY -- --weird /x', { sources: ['--weird'], dest: '/x' }],
  ];
  it.each(ok)('%s', (line, expected) => {
    expect(one(line)).toMatchObject(expected);
  });

  it('FROM --platform and stage names', () => {
    const df = parseDockerfile('FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n');
    expect(df.stages[0]).toMatchObject({ name: 'build', from: { image: 'golang:1.22', platform: '$BUILDPLATFORM', stageName: 'build' } });
  });
});

describe('flags: rejected', () => {
  const bad: [string, RegExp][] = [
    ['COPY --foo=bar a b', /unknown flag: foo/],
    ['COPY --form=x a b', /unknown flag: form \(did you mean from\?\)/],
    ['RUN --mount=type=cahce,target=/x true', /unsupported mount type "cahce" \(did you mean cache\?\)/],
    ['COPY --from a b', /missing a value on flag: from/],
    ['COPY --link=maybe a b', /expecting boolean value for flag link, not: maybe/],
    ['COPY --link= a b', /missing a value on flag: link/],
    ['COPY --from=a --from=b x y', /duplicate flag specified: from/],
    ['RUN --network=bridge true', /unsupported network mode "bridge"/],
    ['RUN --security=root true', /unsupported security mode "root"/],
    ['HEALTHCHECK --interval=5 CMD true', /missing unit in duration "5"/],
    ['HEALTHCHECK --interval=10us CMD true', /Interval "interval" cannot be less than 1ms/],
    ['HEALTHCHECK --retries=-1 CMD true', /--retries cannot be negative/],
    ['HEALTHCHECK --retries=x CMD true', /invalid syntax/],
    ['HEALTHCHECK CMD', /Missing command after HEALTHCHECK CMD/],
    ['HEALTHCHECK NONE x', /HEALTHCHECK NONE takes no arguments/],
    ['HEALTHCHECK PING x', /Unknown type "PING" in HEALTHCHECK/],
    ['ENV --x=1 A=b', /unknown flag: x/],
    ['WORKDIR --x=1 /a', /unknown flag: x/],
    ['ARG --required A', /unknown flag: required/],
  ];
  it.each(bad)('%s', (line, msg) => {
    expect(() => one(line)).toThrow(DockerfileError);
    expect(() => one(line)).toThrow(msg);
  });

  it('errors carry file, line, excerpt', () => {
    try {
      parseDockerfile('FROM scratch\n\nCOPY --nope=1 \\\n  a b\n', { file: 'ctx/Dockerfile' });
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'DOCKERFILE', file: 'ctx/Dockerfile', line: 3, endLine: 4 });
      expect((e as DockerfileError).excerpt).toContain('COPY --nope=1');
    }
  });
});

describe('RUN --mount', () => {
  const mounts: [string, Record<string, unknown>][] = [
    ['type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000,gid=1000', { type: 'cache', target: '/root/.cache', id: 'pip', sharing: 'locked', mode: 0o755, uid: 1000, gid: 1000, readonly: false }],
    ['type=bind,from=build,source=/out,dst=/in', { type: 'bind', from: 'build', source: '/out', target: '/in', readonly: true }],
    ['src=.,target=/src,rw', { type: 'bind', readonly: false }],
    ['type=tmpfs,target=/tmp,size=64m', { type: 'tmpfs', size: 64 * 1024 * 1024, readonly: false }],
    ['type=secret,id=token,env=TOKEN,required', { type: 'secret', id: 'token', env: 'TOKEN', required: true, readonly: true }],
    ['type=ssh,required=true', { type: 'ssh', required: true }],
    ['type=cache,target=$HOME/.cache,ro=true', { target: '$HOME/.cache', readonly: true }],
  ];
  it.each(mounts)('%s', (spec, expected) => {
    const run = one(`RUN --mount=${spec} true`);
    expect(run.kind).toBe('RUN');
    if (run.kind === 'RUN') expect(run.mounts[0]).toMatchObject({ raw: spec, ...expected });
  });

  const bad: [string, RegExp][] = [
    ['type=bind,mode=0644', /mode not allowed for "bind" type mounts/],
    ['type=bind,sharing=shared', /invalid cache sharing set for bind mount/],
    ['type=cache,sharing=bogus', /unsupported sharing value "bogus"/],
    ['type=secret,from=x,id=a', /secret mount should not have a from/],
    ['type=secret', /invalid secret mount/],
    ['type=secret,source=a,id=b', /both source and id can't be set/],
    ['required', /unexpected key 'required' for mount type 'bind'/],
    ['type=cache,targte=/x', /unexpected key 'targte'.*did you mean target/],
    ['type=cache,uid=abc', /invalid value abc for uid/],
    ['type=bind,from=$STAGE', /doesn't support variable expansion/],
    ['type=bind,size=1g', /unexpected key 'size' for mount type 'bind'/],
    ['target', /invalid field 'target' must be a key=value pair/],
  ];
  it.each(bad)('%s', (spec, msg) => {
    expect(() => one(`RUN --mount=${spec} true`)).toThrow(msg);
  });
});

it('mount values are CSV (quoted fields may hold commas)', () => {
  expect(csvFields('type=bind,"target=/a,b",ro')).toEqual(['type=bind', 'target=/a,b', 'ro']);
  expect(csvFields('"x""y",z')).toEqual(['x"y', 'z']);
  expect(() => csvFields('a="b')).toThrow(/bare "/);
  expect(parseRunMount('type=cache,target=$T,mode=$M', (v) => v.replace('$T', '/c').replace('$M', '700'))).toMatchObject({ target: '/c', mode: 0o700 });
});

describe('JSON (exec) vs shell form', () => {
  const forms: [string, Record<string, unknown>][] = [
    ['CMD ["a", "b c"]', { kind: 'CMD', form: 'exec', command: ['a', 'b c'] }],
    ['CMD a "b c"', { kind: 'CMD', form: 'shell', command: 'a "b c"' }],
    ["CMD ['a']", { form: 'shell', command: "['a']" }],
    ['ENTRYPOINT ["/bin/sh", "-c"]', { kind: 'ENTRYPOINT', form: 'exec', command: ['/bin/sh', '-c'] }],
    ['RUN ["echo", "x"]', { form: 'exec', command: ['echo', 'x'] }],
    ['SHELL ["/bin/bash", "-eo", "pipefail", "-c"]', { kind: 'SHELL', command: ['/bin/bash', '-eo', 'pipefail', '-c'] }],
    ['COPY ["a b", "/c d/"]', { sources: ['a b'], dest: '/c d/' }],
    ['VOLUME ["/a", "/b"]', { kind: 'VOLUME', paths: ['/a', '/b'] }],
    ['VOLUME /a /b', { paths: ['/a', '/b'] }],
  ];
  it.each(forms)('%s', (line, expected) => {
    expect(one(line)).toMatchObject(expected);
  });
  it('rejects non-string JSON arrays and shell-form SHELL', () => {
    expect(() => one('CMD ["a", 1]')).toThrow(/arrays must be comprised of strings only/);
    expect(() => one('SHELL /bin/sh -c')).toThrow(/SHELL requires the arguments to be in JSON form/);
  });
});

describe('other instructions', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['ENV A=1 B="x y" C=a\\ b', { kind: 'ENV', pairs: [{ key: 'A', value: '1', noDelim: false }, { key: 'B', value: '"x y"' }, { key: 'C', value: 'a\\ b' }] }],
    ['ENV PATH /usr/bin:$PATH', { pairs: [{ key: 'PATH', value: '/usr/bin:$PATH', noDelim: true }] }],
    ['LABEL a=b "c d"="e"', { kind: 'LABEL', pairs: [{ key: 'a', value: 'b' }, { key: '"c d"', value: '"e"' }] }],
    ['ARG A B=2 C="x y"', { kind: 'ARG', args: [{ key: 'A' }, { key: 'B', value: '2' }, { key: 'C', value: '"x y"' }] }],
    ['EXPOSE 8080/tcp 443 53/udp', { kind: 'EXPOSE', ports: ['443', '53/udp', '8080/tcp'] }],
    ['USER app:app', { kind: 'USER', user: 'app:app' }],
    ['WORKDIR /a b', { kind: 'WORKDIR', path: '/a b' }],
    ['STOPSIGNAL SIGTERM', { kind: 'STOPSIGNAL', signal: 'SIGTERM' }],
    ['MAINTAINER Jane <j@x>', { kind: 'MAINTAINER', name: 'Jane <j@x>' }],
    ['ONBUILD RUN echo hi', { kind: 'ONBUILD', expression: 'RUN echo hi', instruction: { kind: 'RUN', command: 'echo hi' } }],
    ['onbuild copy --from=x a /b', { kind: 'ONBUILD', instruction: { kind: 'COPY', from: 'x' } }],
  ];
  it.each(cases)('%s', (line, expected) => {
    expect(one(line)).toMatchObject(expected);
  });

  const bad: [string, RegExp][] = [
    ['ENV A', /ENV must have two arguments/],
    ['ENV A=1 B', /can't find = in "B"/],
    ['ARG =x', /ARG names can not be blank/],
    ['ONBUILD ONBUILD RUN x', /Chaining ONBUILD/],
    ['ONBUILD FROM x', /FROM isn't allowed as an ONBUILD trigger/],
    ['COPY a', /COPY requires at least two arguments/],
    ['ADD a', /ADD requires at least two arguments/],
    ['USER', /USER requires exactly one argument/],
    ['EXPOSE', /EXPOSE requires at least one argument/],
    ['VOLUME [""]', /VOLUME specified can not be an empty string/],
    ['RUNN echo', /unknown instruction: RUNN \(did you mean RUN\?\)/],
    ['cpoy a b', /unknown instruction: cpoy \(did you mean copy\?\)/],
    ['FROM a AS 1x', /invalid name for build stage/],
    ['FROM a b', /FROM requires either one or three arguments/],
  ];
  it.each(bad)('%s', (line, msg) => {
    expect(() => one(line)).toThrow(msg);
  });
  it('unknown instruction carries a suggestion', () => {
    try {
      one('WROKDIR /x');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ suggestion: 'WORKDIR', line: 2 });
    }
  });
});

describe('heredocs', () => {
  it('RUN <<EOF with expansion on', () => {
    const r = one('RUN <<EOF\necho $HOME\n  indented\nEOF');
    expect(r).toMatchObject({ kind: 'RUN', form: 'shell', command: '<<EOF', heredocs: [{ name: 'EOF', content: 'echo $HOME\n  indented\n', expand: true, chomp: false }] });
    expect(r.location).toEqual({ file: 'Dockerfile', startLine: 2, endLine: 5 });
  });
  it('<<- strips leading tabs, keeps the raw body too', () => {
    const r = one('RUN <<-EOT\n\techo a\n\t\techo b\n\tEOT');
    if (r.kind !== 'RUN') throw new Error('not RUN');
    expect(r.heredocs[0]).toMatchObject({ name: 'EOT', chomp: true, content: 'echo a\necho b\n', rawContent: '\techo a\n\t\techo b\n' });
  });
  it.each([["<<'EOF'"], ['<<"EOF"'], ['<<E"O"F']])('quoted delimiter %s disables expansion', (marker) => {
    const r = one(`RUN ${marker}\necho $X\nEOF`);
    if (r.kind !== 'RUN') throw new Error('not RUN');
    expect(r.heredocs[0]).toMatchObject({ name: 'EOF', expand: false });
  });
  it('several heredocs on one line, with a program', () => {
    const r = one('RUN <<A python3 - <<B\nprint(1)\nA\nsecond\nB');
    if (r.kind !== 'RUN') throw new Error('not RUN');
    expect(r.command).toBe('<<A python3 - <<B');
    expect(r.heredocs.map((h) => [h.name, h.content])).toEqual([['A', 'print(1)\n'], ['B', 'second\n']]);
  });
  it('COPY/ADD heredocs become inline files', () => {
    const c = one('COPY <<conf.ini <<"run.sh" /etc/app/\nk=v\nconf.ini\n#!/bin/sh\nrun.sh');
    expect(c).toMatchObject({ kind: 'COPY', sources: [], dest: '/etc/app/', heredocs: [{ name: 'conf.ini', content: 'k=v\n', expand: true }, { name: 'run.sh', content: '#!/bin/sh\n', expand: false }] });
    const a = one('ADD a <<EOF /b/\nx\nEOF');
    expect(a).toMatchObject({ kind: 'ADD', sources: ['a'], heredocs: [{ name: 'EOF', content: 'x\n' }] });
  });
  it('following instructions keep their line numbers', () => {
    const df = parseDockerfile('FROM a\nRUN <<EOF\nx\nEOF\nRUN y\n');
    expect(df.stages[0]?.instructions[1]?.location).toEqual({ file: 'Dockerfile', startLine: 5, endLine: 5 });
  });
  it('JSON RUN and non-heredoc instructions ignore <<', () => {
    expect(one('RUN ["cat", "<<EOF"]')).toMatchObject({ heredocs: [] });
    const df = parseDockerfile('FROM a\nENV A=<<EOF\nRUN b\n');
    expect(df.stages[0]?.instructions.map((i) => i.kind)).toEqual(['ENV', 'RUN']);
  });
  it('rejects unterminated heredocs and heredoc destinations', () => {
    expect(() => one('RUN <<EOF\necho')).toThrow(/unterminated heredoc/);
    expect(() => one('COPY a <<EOF\nx\nEOF')).toThrow(/COPY cannot accept a heredoc as a destination/);
  });
  it('ONBUILD heredoc expression reconstitutes the body', () => {
    expect(one('ONBUILD RUN <<EOF\necho x\nEOF')).toMatchObject({ kind: 'ONBUILD', expression: 'RUN <<EOF\necho x\nEOF' });
  });
});

describe('file structure', () => {
  it('directives, meta args, stages, original text', () => {
    const df = parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nARG BASE=alpine\nFROM $BASE AS one\nRUN echo a `\n    b\nFROM one\nCOPY --from=one /x /y\n');
    expect(df.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '`' });
    expect(df.metaArgs.map((a) => a.args)).toEqual([[{ key: 'BASE', value: 'alpine' }]]);
    expect(df.instructions.map((i) => i.kind)).toEqual(['ARG', 'FROM', 'RUN', 'FROM', 'COPY']);
    expect(df.stages.map((s) => [s.index, s.name, s.instructions.length])).toEqual([[0, 'one', 1], [1, undefined, 1]]);
    expect(df.stages[0]?.instructions[0]).toMatchObject({ original: 'RUN echo a     b', command: 'echo a     b' });
  });
  it('check directive and BOM', () => {
    const df = parseDockerfile('\ufeff# check=skip=all\nFROM a\n');
    expect(df.directives).toEqual({ escape: '\\', check: 'skip=all' });
  });
  it('comments inside continuations are dropped, whitespace-only continuation lines kept', () => {
    const df = parseDockerfile('FROM a\nRUN apt-get update \\\n    # a comment\n    && apt-get install x \\\n \\\n    && done\n');
    expect(df.stages[0]?.instructions[0]).toMatchObject({ command: 'apt-get update     && apt-get install x      && done' });
  });
  it('an escaped backslash at end of line does not continue', () => {
    const df = parseDockerfile('FROM a\nENV C x\\\\\nENV D y\n');
    expect(df.stages[0]?.instructions.map((i) => i.kind)).toEqual(['ENV', 'ENV']);
  });
  it('rejects instructions before FROM other than ARG, empty files, repeated directives', () => {
    expect(() => parseDockerfile('RUN x\nFROM a\n')).toThrow(/no build stage in current context/);
    expect(() => parseDockerfile('\n# only a comment\n')).toThrow(/file with no instructions/);
    expect(() => parseDockerfile('# escape=`\n# escape=\\\nFROM a\n')).toThrow(/only one escape parser directive/);
    expect(() => parseDockerfile('# escape=x\nFROM a\n')).toThrow(/invalid escape token/);
  });
});
