/**
 * Real-world Dockerfiles modelled on the official images and BuildKit's own. `result` holds the
 * BuildKit dump (reviewed against BuildKit's line rules: comment and empty lines inside continuations
 * dropped, continuation lines keep their indentation, `\`-only lines contribute their whitespace,
 * heredoc bodies outside the node); the assertions below pin the parts that are easy to get wrong.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planBuild } from '../../src/builder/plan.js';
import { checkDockerfile, dumpBuildkit, expandWord, parseDockerfile, type Dockerfile, type Instruction, type RunInstruction } from '../../src/parser/index.js';

const dir = join(import.meta.dirname, 'realworld');
const names = ['python', 'node', 'golang', 'nginx', 'redis', 'postgres', 'buildkit'];
const text = (n: string): string => readFileSync(join(dir, n, 'Dockerfile'), 'utf8');
const at = (df: Dockerfile, line: number): Instruction => {
  const i = df.instructions.find((x) => x.location.startLine === line);
  if (i === undefined) throw new Error(`no instruction at line ${line}`);
  return i;
};
const run = (df: Dockerfile, line: number): RunInstruction => at(df, line) as RunInstruction;
const ranges = (df: Dockerfile): string[] => df.instructions.map((i) => `${i.location.startLine}-${i.location.endLine}`);

describe('real-world dumps match BuildKit', () => {
  it.each(names)('%s', (n) => {
    expect(dumpBuildkit(text(n))).toBe(readFileSync(join(dir, n, 'result'), 'utf8'));
  });
});

describe('real-world details', () => {
  it('python: comments, `\\`-only and empty lines inside a RUN continuation', () => {
    const df = parseDockerfile(text('python'));
    const r = run(df, 28);
    expect(r.location).toEqual({ file: 'Dockerfile', startLine: 28, endLine: 50 });
    const cmd = r.command as string;
    expect(cmd.startsWith('set -eux; \t\tsavedAptMark=')).toBe(true);
    expect(r.command).not.toContain('#');
    expect(r.command).toContain('\tcase "$arch" in \t\tamd64|arm64) \t\t\tEXTRA_CFLAGS=');
    expect(cmd.endsWith('\t; \tpython3 --version')).toBe(true);
    expect(at(df, 10)).toMatchObject({ kind: 'ENV', pairs: [{ key: 'PATH', value: '/usr/local/bin:$PATH', noDelim: true }] });
    expect(expandWord('/usr/local/bin:$PATH', { PATH: '/bin' })).toBe('/usr/local/bin:/bin');
    expect(at(df, 60)).toMatchObject({ kind: 'CMD', form: 'exec', command: ['python3'] });
  });

  it('node: `&&` chains with indented comments between continuation lines', () => {
    const df = parseDockerfile(text('node'));
    expect(ranges(df)).toEqual(['1-1', '3-4', '6-6', '8-31', '33-33', '35-35', '36-36', '38-38']);
    expect(run(df, 3).command).toBe('groupadd --gid 1000 node   && useradd --uid 1000 --gid node --shell /bin/bash --create-home node');
    const big = run(df, 8).command;
    expect(big).toContain('"$key" ||       gpg --batch --keyserver keyserver.ubuntu.com');
    expect(big).toContain('tar.xz\\$" SHASUMS256.txt');
    expect(big).not.toContain('smoke tests');
    expect(at(df, 38)).toMatchObject({ kind: 'CMD', form: 'exec', command: ['node'] });
  });

  it('golang: two stages, COPY --from --link, ENV forms', () => {
    const df = parseDockerfile(text('golang'));
    expect(df.stages.map((s) => [s.name, s.from.image])).toEqual([['build', 'buildpack-deps:bookworm-scm'], [undefined, 'buildpack-deps:bookworm-scm']]);
    expect(at(df, 55)).toMatchObject({ pairs: [{ key: 'GOTOOLCHAIN', value: 'local', noDelim: false }] });
    expect(at(df, 60)).toMatchObject({ kind: 'COPY', from: 'build', link: true, sources: ['/usr/local/go/'], dest: '/usr/local/go/' });
    const plan = planBuild(df);
    expect(plan.stages[1]?.dependencies).toEqual([0]);
    expect(plan.stagesToBuild).toEqual([0, 1]);
  });

  it('nginx: LABEL quotes stay raw until expansion, blank-padded legacy ENV', () => {
    const df = parseDockerfile(text('nginx'));
    const label = at(df, 8);
    expect(label).toMatchObject({ kind: 'LABEL', pairs: [{ key: 'maintainer', value: '"NGINX Docker Maintainers <docker-maint@nginx.com>"' }] });
    expect(expandWord('"NGINX Docker Maintainers <docker-maint@nginx.com>"', {})).toBe('NGINX Docker Maintainers <docker-maint@nginx.com>');
    expect(at(df, 10)).toMatchObject({ pairs: [{ key: 'NGINX_VERSION', value: '1.27.2', noDelim: true }] });
    expect(run(df, 16).location.endLine).toBe(49);
    expect(run(df, 16).command).toContain('ca-certificates     &&     NGINX_GPGKEYS=');
    expect(at(df, 60)).toMatchObject({ kind: 'CMD', command: ['nginx', '-g', 'daemon off;'] });
  });

  it('redis and postgres: backslashes inside quoted sed scripts are kept', () => {
    const redis = parseDockerfile(text('redis'));
    expect(run(redis, 36).command).toContain("'s!^( *createBoolConfig[(]\"protected-mode\",.*, *)1( *,.*[)],)$!\\10\\2!'");
    const pg = parseDockerfile(text('postgres'));
    expect(run(pg, 19).command).toContain("sed -ri '/\\/usr\\/share\\/locale/d'");
    expect(ranges(pg).slice(-3)).toEqual(['62-62', '70-70', '71-71']);
    expect(at(pg, 33)).toMatchObject({ pairs: [{ key: 'PATH', value: '$PATH:/usr/lib/postgresql/$PG_MAJOR/bin', noDelim: true }] });
  });

  it('buildkit: syntax directive, meta ARGs, mounts, heredocs, COPY --link --from', () => {
    const df = parseDockerfile(text('buildkit'));
    expect(df.directives).toEqual({ escape: '\\', syntax: 'docker/dockerfile-upstream:master' });
    expect(df.metaArgs.flatMap((a) => a.args.map((x) => `${x.key}=${x.value ?? ''}`))).toEqual(['RUNC_VERSION=v1.2.2', 'ALPINE_VERSION=3.20', 'GO_VERSION=1.23', 'XX_VERSION=1.5.0']);
    expect(df.stages[0]?.from).toMatchObject({ image: 'tonistiigi/xx:${XX_VERSION}', platform: '$BUILDPLATFORM', stageName: 'xx' });
    const mounts = run(df, 31);
    expect(mounts.mounts).toMatchObject([{ type: 'bind', from: 'runc-src', source: '/usr/src/runc', target: '.' }, { type: 'cache', target: '/root/.cache' }]);
    expect(mounts.command).toBe("CGO_ENABLED=1 xx-go build -mod=vendor -ldflags '-extldflags -static' -tags 'apparmor seccomp netgo cgo static_build osusergo' -o /usr/bin/runc ./ &&   xx-verify --static /usr/bin/runc");
    const version = run(df, 43);
    expect(version.location.endLine).toBe(52);
    expect(version.heredocs).toHaveLength(1);
    expect(version.heredocs[0]).toMatchObject({ name: 'EOT', expand: false, chomp: false });
    expect(version.heredocs[0]?.content.split('\n')[0]).toBe('  git rev-parse HEAD 2>/dev/null || {');
    const ctl = run(df, 58);
    expect(ctl.mounts.map((m) => m.type)).toEqual(['bind', 'cache', 'cache', 'bind']);
    expect(ctl.mounts[3]).toMatchObject({ source: '/tmp/.ldflags', target: '/tmp/.ldflags', from: 'buildkit-version' });
    expect(ctl.heredocs[0]).toMatchObject({ name: 'EOT', expand: true, content: '  set -e\n  xx-go build -ldflags "$(cat /tmp/.ldflags)" -o /usr/bin/buildctl ./cmd/buildctl\n  xx-verify --static /usr/bin/buildctl\n' });
    expect(at(df, 76)).toMatchObject({ kind: 'COPY', sources: [], dest: '/etc/buildkit/buildkitd.toml', heredocs: [{ name: 'EOF', chomp: true, expand: false, content: '[worker.oci]\n  gc = true\n' }] });
    expect(at(df, 69)).toMatchObject({ from: expect.stringMatching(/^tonistiigi\/binfmt:buildkit-v8\.1\.5-44@sha256:/) as string, link: true });

    const plan = planBuild(df);
    const byName = (n: string): number => plan.stageIndexByRef(n) ?? -1;
    expect(plan.stages[byName('golatest')]?.baseText).toBe('golang:1.23-alpine3.20');
    expect(plan.stages[byName('buildkit-linux')]?.dependencies).toEqual([byName('buildkit-export'), byName('binaries-linux')].sort((a, b) => a - b));
    expect(plan.stages[byName('buildctl')]?.dependencies).toEqual([byName('buildkit-base'), byName('buildkit-version')]);
    expect(plan.stages[byName('binaries-linux')]?.imageRefs).toEqual([expect.stringMatching(/^tonistiigi\/binfmt:/) as string]);
  });
});

describe('docker build --check on real-world files', () => {
  const summary = (n: string): string[] => [...new Set(checkDockerfile(text(n)).findings.map((f) => `${f.line} ${f.rule}`))];
  it('official images use the legacy ENV form (and python trips the secrets rule with GPG_KEY, as with docker)', () => {
    expect(summary('python')).toEqual(['10 LegacyKeyValueFormat', '13 LegacyKeyValueFormat', '25 LegacyKeyValueFormat', '25 SecretsUsedInArgOrEnv', '26 LegacyKeyValueFormat']);
    expect(summary('redis')).toEqual(['23 LegacyKeyValueFormat', '32 LegacyKeyValueFormat', '33 LegacyKeyValueFormat', '34 LegacyKeyValueFormat']);
  });
  it('golang: $GOPATH is defined by ENV, so no UndefinedVar', () => {
    expect(summary('golang')).toEqual(['7 LegacyKeyValueFormat', '9 LegacyKeyValueFormat', '51 LegacyKeyValueFormat', '57 LegacyKeyValueFormat', '58 LegacyKeyValueFormat']);
  });
  it('buildkit: $GOPATH comes from the golang base image, unknown without it', () => {
    expect(summary('buildkit')).toEqual(['25 UndefinedVar']);
    expect(checkDockerfile(text('buildkit'), { baseEnv: (img) => (img.startsWith('golang:') ? { GOPATH: '/go', PATH: '/go/bin' } : undefined) }).findings).toEqual([]);
  });
});
