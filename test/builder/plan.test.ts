import { describe, expect, it } from 'vitest';
import { planBuild, stageArgValue, parsePlatform } from '../../src/builder/plan.js';
import { parseDockerfile } from '../../src/parser/index.js';

const plan = (text: string, opts: Parameters<typeof planBuild>[1] = {}): ReturnType<typeof planBuild> => planBuild(parseDockerfile(text), opts);

describe('planBuild: meta ARGs and FROM', () => {
  it('expands FROM with meta ARG defaults and --build-arg overrides', () => {
    const text = 'ARG IMG=alpine\nARG TAG=3.19\nARG REF=${IMG}:${TAG}\nFROM ${IMG}:${TAG}\nFROM $REF\n';
    const p = plan(text);
    expect(p.stages.map((s) => s.base)).toEqual([{ kind: 'image', ref: 'alpine:3.19' }, { kind: 'image', ref: 'alpine:3.19' }]);
    const q = plan(text, { buildArgs: { TAG: 'edge' } });
    expect(q.stages[0]?.baseText).toBe('alpine:edge');
    expect(q.metaArgs.get('TAG')).toBe('edge');
    // A --build-arg value is taken literally, not expanded.
    expect(plan(text, { buildArgs: { REF: '$IMG' } }).stages[1]?.baseText).toBe('$IMG');
  });
  it('scratch, stage bases (case-insensitive), blank base rejected', () => {
    const p = plan('FROM scratch AS Base\nFROM BASE\nFROM busybox\n');
    expect(p.stages.map((s) => s.base)).toEqual([{ kind: 'scratch' }, { kind: 'stage', index: 0 }, { kind: 'image', ref: 'busybox' }]);
    expect(() => plan('ARG X\nFROM $X\n')).toThrow(/base name \(\$X\) should not be blank/);
  });
  it('predefined platform ARGs and FROM --platform', () => {
    const p = plan('FROM --platform=$BUILDPLATFORM golang AS b\nFROM alpine\n', {
      platform: { os: 'linux', architecture: 'arm64' }, buildPlatform: { os: 'linux', architecture: 'amd64' },
    });
    expect(p.predefinedArgs.get('TARGETPLATFORM')).toBe('linux/arm64');
    expect(p.predefinedArgs.get('BUILDARCH')).toBe('amd64');
    expect(p.stages[0]?.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(p.stages[1]?.platform).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(plan('FROM a\n').predefinedArgs.get('TARGETPLATFORM')).toBe('linux/amd64');
  });
  it.each([
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
    ['arm64', { os: 'linux', architecture: 'arm64' }],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }],
  ])('parsePlatform(%s)', (spec, expected) => {
    expect(parsePlatform(spec)).toEqual(expected);
  });
});

describe('planBuild: stage graph', () => {
  const multi = [
    'FROM alpine AS deps', 'RUN echo deps',
    'FROM alpine AS tools', 'RUN echo tools',
    'FROM deps AS build', 'COPY --from=tools /t /t', 'RUN --mount=type=bind,from=assets,target=/a true',
    'FROM alpine AS unrelated',
    'FROM scratch AS final', 'COPY --from=build /out /', 'COPY --from=1 /t /t2', 'COPY --from=alpine:3 /etc/os-release /',
  ].join('\n');

  it('target defaults to the last stage; unneeded stages are pruned', () => {
    const p = plan(multi);
    expect(p.target).toBe(4);
    expect(p.stagesToBuild).toEqual([0, 1, 2, 4]);
    expect(p.stages[2]?.dependencies).toEqual([0, 1]);
    expect(p.stages[2]?.imageRefs).toEqual(['assets']);
    expect(p.stages[4]?.dependencies).toEqual([1, 2]);
    expect(p.stages[4]?.imageRefs).toEqual(['alpine:3']);
  });
  it('independent stages share a parallel group', () => {
    expect(plan(multi).parallelGroups).toEqual([[0, 1], [2], [4]]);
  });
  it('--target by name, case-insensitive', () => {
    const p = plan(multi, { target: 'BUILD' });
    expect(p.target).toBe(2);
    expect(p.stagesToBuild).toEqual([0, 1, 2]);
  });
  it('unknown target lists the stages and suggests', () => {
    expect(() => plan(multi, { target: 'biuld' })).toThrow(/target stage "biuld" could not be found \(stages: deps, tools, build, unrelated, final\) \(did you mean build\?\)/);
  });
  it('cycles and bad indices are rejected', () => {
    expect(() => plan('FROM a AS x\nCOPY --from=y / /\nFROM a AS y\nCOPY --from=x / /\n')).toThrow(/circular dependency detected on stage: /);
    expect(() => plan('FROM a AS x\nCOPY --from=x / /\n')).toThrow(/circular dependency/);
    expect(() => plan('FROM a\nCOPY --from=3 / /\n')).toThrow(/invalid stage index 3/);
  });
  it('forward COPY --from references by name are allowed', () => {
    const p = plan('FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nFROM c\nCOPY --from=one /x /x\n');
    expect(p.stagesToBuild).toEqual([1, 0, 2]);
  });
  it('a stage cannot be its own FROM base: FROM x AS x means image x', () => {
    expect(plan('FROM x AS x\n').stages[0]?.base).toEqual({ kind: 'image', ref: 'x' });
  });
  it('stageIndexByRef resolves names case-insensitively', () => {
    const p = plan(multi);
    expect(p.stageIndexByRef('Tools')).toBe(1);
    expect(p.stageIndexByRef('nope')).toBeUndefined();
  });
});

describe('planBuild: ARG scoping and unused build args', () => {
  const text = 'ARG VERSION=1\nARG UNUSED_META\nFROM alpine\nARG VERSION\nARG LOCAL=x\nRUN echo $VERSION $LOCAL\n';
  it('meta values reach a stage only through a bare ARG', () => {
    const p = plan(text, { buildArgs: { LOCAL: 'y' } });
    expect(stageArgValue(p, 'VERSION', false)).toEqual({ value: '1', useDefault: false });
    expect(stageArgValue(p, 'LOCAL', true)).toEqual({ value: 'y', useDefault: false });
    expect(stageArgValue(plan(text), 'LOCAL', true)).toEqual({ useDefault: true });
    expect(stageArgValue(p, 'TARGETARCH', false)).toEqual({ value: 'amd64', useDefault: false });
    expect(stageArgValue(p, 'UNDECLARED', false)).toEqual({ useDefault: false });
  });
  it('reports build args nothing consumes, ignoring proxies', () => {
    const p = plan(text, { buildArgs: { VERSION: '2', NOPE: '1', HTTP_PROXY: 'http://p', no_proxy: 'x' } });
    expect(p.unusedBuildArgs).toEqual(['NOPE']);
    expect([...p.proxyArgs.keys()]).toEqual(['HTTP_PROXY', 'no_proxy']);
  });
  it('ARGs of pruned stages do not count as consumed', () => {
    const p = plan('FROM a AS other\nARG ONLY_OTHER\nFROM b\n', { buildArgs: { ONLY_OTHER: '1' } });
    expect(p.unusedBuildArgs).toEqual(['ONLY_OTHER']);
  });
});
