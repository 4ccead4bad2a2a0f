/** `tsbuild check` through the real binary (bin/tsbuild → dist/), on temp files. */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');
let dir: string;

async function newest(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.mtimeMs;
  const times = await Promise.all((await readdir(path)).map((n) => newest(join(path, n))));
  return Math.max(s.mtimeMs, ...times);
}

/** dist/ is rebuilt only when the sources this test covers are newer than it. */
async function ensureBuilt(): Promise<void> {
  const built = await stat(join(repo, 'dist/src/cli/commands/check.js')).then((s) => s.mtimeMs, () => 0);
  const src = Math.max(await newest(join(repo, 'src/parser')), await newest(join(repo, 'src/cli')));
  if (built >= src) return;
  await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo }).catch(() => undefined);
}

async function tsbuild(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(join(repo, 'bin/tsbuild'), ['--root', join(dir, 'root'), ...args], { cwd: dir });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-check-'));
  await ensureBuilt();
}, 180_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tsbuild check', () => {
  it('exits 0 on a clean Dockerfile', async () => {
    await writeFile(join(dir, 'Dockerfile'), 'FROM alpine:3.20\nCOPY . /app\nCMD ["/app/run"]\n');
    const r = await tsbuild('check', dir);
    expect(r).toMatchObject({ code: 0, stdout: 'Check complete, no warnings found.\n' });
  });

  it('prints docker-style warnings and exits 1', async () => {
    await writeFile(join(dir, 'warn.Dockerfile'), 'FROM alpine AS Build\n\nENTRYPOINT my-app \\\n  start\nCOPY . /app\n');
    const r = await tsbuild('check', '-f', join(dir, 'warn.Dockerfile'));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe([
      'WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/',
      "Stage name 'Build' should be lowercase",
      'warn.Dockerfile:1',
      '--------------------',
      '   1 | >>> FROM alpine AS Build',
      '   2 |     ',
      '--------------------',
      '',
      'WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/',
      'JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals',
      'warn.Dockerfile:3',
      '--------------------',
      '   2 |     ',
      '   3 | >>> ENTRYPOINT my-app \\',
      '   4 | >>>   start',
      '   5 |     COPY . /app',
      '--------------------',
      '',
      'Check complete, 2 warnings have been found!',
      '',
    ].join('\n'));
  });

  it('--format json lists findings', async () => {
    await writeFile(join(dir, 'json.Dockerfile'), '# check=error=true\nFROM alpine\nMAINTAINER me\n');
    const r = await tsbuild('check', '--format', 'json', '-f', join(dir, 'json.Dockerfile'));
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { error: boolean; findings: { rule: string; severity: string; line: number }[] };
    expect(out.error).toBe(true);
    expect(out.findings).toEqual([expect.objectContaining({ rule: 'MaintainerDeprecated', severity: 'error', line: 3, file: 'json.Dockerfile' })]);
  });

  it('--build-arg BUILDKIT_DOCKERFILE_CHECK skips rules', async () => {
    await writeFile(join(dir, 'skip.Dockerfile'), 'FROM alpine\nMAINTAINER me\n');
    const r = await tsbuild('check', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=skip=MaintainerDeprecated', '-f', join(dir, 'skip.Dockerfile'));
    expect(r.code).toBe(0);
  });

  it('exits 3 with the line and a caret on a parse error', async () => {
    await writeFile(join(dir, 'bad.Dockerfile'), 'FROM alpine\nCOPY --form=x a b\n');
    const r = await tsbuild('check', '-f', join(dir, 'bad.Dockerfile'));
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe([
      'error: unknown flag: form (did you mean from?)',
      ' --> bad.Dockerfile:2:6',
      '     2 | COPY --form=x a b',
      '       |      ^',
      '',
    ].join('\n'));
  });

  it('a missing Dockerfile is not found (5), a bad format is usage (2)', async () => {
    expect((await tsbuild('check', '-f', join(dir, 'nope'))).code).toBe(5);
    expect((await tsbuild('check', '--format', 'xml', dir)).code).toBe(2);
  });
});
