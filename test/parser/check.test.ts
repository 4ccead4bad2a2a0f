import { describe, expect, it } from 'vitest';
import { checkDockerfile, DockerfileError } from '../../src/parser/index.js';

const rules = (text: string, buildArgs?: Record<string, string>): string[] =>
  checkDockerfile(text, buildArgs === undefined ? {} : { buildArgs }).findings.map((f) => `${f.line} ${f.rule}: ${f.message}`);

describe('checkDockerfile rules', () => {
  const cases: [string, string, string[]][] = [
    ['clean file', 'FROM alpine\nCMD ["sh"]\n', []],
    ['JSONArgsRecommended', 'FROM alpine\nENTRYPOINT my-app start\n', ['2 JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals']],
    ['JSONArgsRecommended silenced by SHELL', 'FROM alpine\nSHELL ["/bin/bash", "-c"]\nCMD echo hi\n', []],
    ['SHELL inherited from parent stage', 'FROM alpine AS a\nSHELL ["/bin/ash", "-c"]\nFROM a\nCMD echo hi\n', []],
    ['MaintainerDeprecated', 'FROM alpine\nMAINTAINER me <me@x>\n', ['2 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label']],
    ['StageNameCasing', 'FROM alpine AS Builder\n', ["1 StageNameCasing: Stage name 'Builder' should be lowercase"]],
    ['FromAsCasing', 'FROM alpine as build\n', ["1 FromAsCasing: 'as' and 'FROM' keywords' casing do not match"]],
    ['FromAsCasing lower', 'from alpine AS build\n', ["1 FromAsCasing: 'AS' and 'from' keywords' casing do not match"]],
    ['UndefinedVar with did-you-mean', 'FROM alpine\nENV PATH=$PAHT:/app/bin\n', ["2 UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?)"]],
    ['UndefinedVar none for ARG/ENV', 'FROM alpine\nARG V\nENV A=1\nCOPY $V$A /x\nRUN echo $NOPE\n', []],
    ['UndefinedVar: ENV pairs see the env before the instruction', 'FROM scratch\nENV A=1 B=$A\n', ["2 UndefinedVar: Usage of undefined variable '$A'"]],
    ['UndefinedVar: ENV inherited from parent stage', 'FROM alpine AS a\nENV X=1\nFROM a\nWORKDIR /$X\n', []],
    ['UndefinedVar: ARG not inherited', 'FROM alpine AS a\nARG X=1\nFROM a\nWORKDIR /$X\n', ["4 UndefinedVar: Usage of undefined variable '$X'"]],
    ['DuplicateStageName', 'FROM alpine AS a\nFROM alpine AS A\n', ['2 StageNameCasing: Stage name \'A\' should be lowercase', '2 DuplicateStageName: Duplicate stage name "a", stage names should be unique']],
    ['ReservedStageName', 'FROM alpine AS context\n', ['1 ReservedStageName: Stage name should not use the same name as reserved stage "context"']],
    ['FromPlatformFlagConstDisallowed', 'FROM --platform=linux/amd64 alpine\n', ['1 FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value "linux/amd64"']],
    ['const platform allowed when the stage is named after it', 'FROM --platform=linux/arm64 alpine AS build-arm64\n', []],
    ['RedundantTargetPlatform', 'FROM --platform=$TARGETPLATFORM alpine\n', ['1 RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior']],
    ['BUILDPLATFORM is fine', 'FROM --platform=$BUILDPLATFORM alpine\n', []],
    ['WorkdirRelativePath', 'FROM alpine\nWORKDIR app\n', ['2 WorkdirRelativePath: Relative workdir "app" can have unexpected results if the base image changes']],
    ['relative WORKDIR after an absolute one', 'FROM alpine\nWORKDIR /app\nWORKDIR sub\n', []],
    ['ConsistentInstructionCasing', 'FROM alpine\nRUN a\nrun b\ncopy . /\nWORKDIR /x\n', [
      "3 ConsistentInstructionCasing: Command 'run' should match the case of the command majority (uppercase)",
      "4 ConsistentInstructionCasing: Command 'copy' should match the case of the command majority (uppercase)",
    ]],
    ['ConsistentInstructionCasing lowercase majority', 'from alpine\nrun a\nRun b\n', ["3 ConsistentInstructionCasing: Command 'Run' should match the case of the command majority (lowercase)"]],
    ['LegacyKeyValueFormat', 'FROM alpine\nENV A 1\nLABEL b 2\n', [
      '2 LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format',
      '3 LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy "LABEL key value" format',
    ]],
    ['UndefinedArgInFrom', 'ARG VERSION=1\nFROM alpine:${VERSON}\n', [
      "2 UndefinedArgInFrom: FROM argument 'VERSON' is not declared (did you mean VERSION?)",
      '2 InvalidDefaultArgInFrom: Default value for ARG alpine:${VERSON} results in empty or invalid base image name',
    ]],
    ['UndefinedArgInFrom in --platform', 'FROM --platform=$BUILDPLATFROM alpine\n', ["1 UndefinedArgInFrom: FROM argument 'BUILDPLATFROM' is not declared (did you mean BUILDPLATFORM?)"]],
    ['InvalidDefaultArgInFrom', 'ARG TAG\nFROM busybox:${TAG}\n', ['2 InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results in empty or invalid base image name']],
    ['InvalidDefaultArgInFrom empty', 'ARG IMG\nFROM $IMG\n', ['2 InvalidDefaultArgInFrom: Default value for ARG $IMG results in empty or invalid base image name']],
    ['valid default', 'ARG TAG=3.20\nFROM alpine:${TAG}\n', []],
    ['MultipleInstructionsDisallowed', 'FROM alpine\nCMD ["a"]\nHEALTHCHECK NONE\nCMD ["b"]\nHEALTHCHECK NONE\n', [
      '2 MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used',
      '3 MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used',
    ]],
    ['CMD once per stage is fine', 'FROM alpine AS a\nCMD ["a"]\nFROM a\nCMD ["b"]\n', []],
    ['SecretsUsedInArgOrEnv', 'ARG GITHUB_TOKEN\nFROM alpine\nARG DB_PASSWORD\nENV AWS_SECRET_KEY=x PUBLIC_KEY=y MONKEY=z\n', [
      '1 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")',
      '3 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "DB_PASSWORD")',
      '4 SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "AWS_SECRET_KEY")',
    ]],
    ['ExposeProtoCasing', 'FROM alpine\nEXPOSE 80/TCP 53/udp\n', ["2 ExposeProtoCasing: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase"]],
    ['ExposeInvalidFormat', 'FROM alpine\nEXPOSE 127.0.0.1:80:80 8080:80\n', [
      "2 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'",
      "2 ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80'",
    ]],
  ];
  it.each(cases)('%s', (_name, text, expected) => {
    expect(rules(text)).toEqual(expected);
  });

  it('findings carry file, line, column, url, severity', () => {
    const r = checkDockerfile('FROM alpine\n  MAINTAINER me\n', { file: 'app.Dockerfile' });
    expect(r.findings).toEqual([{
      rule: 'MaintainerDeprecated', severity: 'warning', message: 'Maintainer instruction is deprecated in favor of using label',
      description: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author',
      file: 'app.Dockerfile', line: 2, column: 3, url: 'https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/',
    }]);
    expect(checkDockerfile('FROM a\nCMD x\n').findings[0]?.url).toBe('https://docs.docker.com/go/dockerfile/rule/json-args-recommended/');
  });
});

describe('check directive', () => {
  const text = 'FROM alpine AS Build\nMAINTAINER x\nCMD a\n';
  it('skips listed rules', () => {
    expect(rules(`# check=skip=StageNameCasing,MaintainerDeprecated\n${text}`)).toEqual(['4 JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals']);
  });
  it('skip=all', () => {
    expect(rules(`# check=skip=all\n${text}`)).toEqual([]);
  });
  it('error=true turns findings into errors', () => {
    const r = checkDockerfile(`# check=error=true;skip=JSONArgsRecommended\n${text}`);
    expect(r.error).toBe(true);
    expect(r.findings.map((f) => [f.rule, f.severity])).toEqual([['StageNameCasing', 'error'], ['MaintainerDeprecated', 'error']]);
  });
  it('BUILDKIT_DOCKERFILE_CHECK build-arg overrides the directive', () => {
    expect(rules(`# check=skip=all\n${text}`, { BUILDKIT_DOCKERFILE_CHECK: 'skip=StageNameCasing,JSONArgsRecommended' })).toEqual(['3 MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label']);
  });
  it('rejects a malformed directive', () => {
    expect(() => checkDockerfile(`# check=error=maybe\n${text}`)).toThrow(/invalid value for error: maybe/);
    expect(() => checkDockerfile(`# check=skipp=all\n${text}`)).toThrow(DockerfileError);
  });
  it('parse errors are DockerfileErrors, not findings', () => {
    expect(() => checkDockerfile('FROM alpine\nRUNN x\n')).toThrow(/unknown instruction: RUNN \(did you mean RUN\?\)/);
    expect(() => checkDockerfile('FROM alpine\nENV A=${B\n')).toThrow(DockerfileError);
  });
  it('build args feed FROM and ARG scope', () => {
    expect(rules('ARG TAG\nFROM alpine:$TAG\nARG X\nWORKDIR /$X\n', { TAG: '3' })).toEqual(['2 InvalidDefaultArgInFrom: Default value for ARG alpine:$TAG results in empty or invalid base image name']);
  });
  it('baseEnv supplies base image variables', () => {
    const r = checkDockerfile('FROM golang\nWORKDIR $GOPATH/src\n', { baseEnv: (img) => (img === 'golang' ? { GOPATH: '/go' } : undefined) });
    expect(r.findings).toEqual([]);
  });
});
