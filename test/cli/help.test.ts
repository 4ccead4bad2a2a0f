/** Help, command dispatch and did-you-mean, through main() as the binary runs it. */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { cli, removeAll, tempDir } from './helpers.js';

const dirs: string[] = [];
let root: string;
beforeAll(async () => {
  root = await tempDir('help');
  dirs.push(root);
});
afterAll(() => removeAll(dirs));

describe('overview help', () => {
  it('tsbuild, tsbuild --help, -h and help print the command list and exit 0', async () => {
    const outputs = [];
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      const r = await cli(argv);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      outputs.push(r.stdout);
    }
    expect(new Set(outputs).size).toBe(1);
    const text = outputs[0] ?? '';
    expect(text).toMatch(/^Usage: {2}tsbuild \[OPTIONS\] PATH/);
    for (const [name, c] of Object.entries(COMMANDS)) expect(text).toMatch(new RegExp(`^  ${name} +${c.summary.replace(/[()[\]|.*+?]/g, '\\$&')}$`, 'm'));
    expect(text).toContain("Run 'tsbuild COMMAND --help'");
  });

  it('--version prints the version', async () => {
    const r = await cli(['--version']);
    expect(r).toEqual({ code: 0, stdout: 'tsbuild 0.1.0\n', stderr: '' });
  });
});

describe('command help', () => {
  it.each(Object.keys(COMMANDS))('tsbuild %s --help shows its usage and flags', async (name) => {
    const r = await cli([name, '--help']);
    expect(r.code).toBe(0);
    const command = COMMANDS[name];
    expect(r.stdout).toContain(`Usage: tsbuild ${command?.usage ?? ''}`);
    expect(r.stdout).toContain(command?.summary);
    for (const f of command?.flags ?? []) expect(r.stdout).toContain(`--${f.name}`);
    expect(r.stdout).toContain('--root string');
  });

  it('help COMMAND equals COMMAND --help', async () => {
    expect((await cli(['help', 'history'])).stdout).toBe((await cli(['history', '--help'])).stdout);
  });

  it('flags show docker-style value types', async () => {
    const r = await cli(['build', '--help']);
    expect(r.stdout).toMatch(/-t, --tag list +name and optionally a tag/);
    expect(r.stdout).toMatch(/-f, --file string +Dockerfile path/);
    expect(r.stdout).toMatch(/ {4}--no-cache +do not use the build cache/);
  });
});

describe('dispatch', () => {
  it('a mistyped command gets a did-you-mean and exit 2', async () => {
    const r = await cli(['imgaes']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`error: unknown command: imgaes\nhint: did you mean "images"? (see 'tsbuild --help')\n`);
  });

  it('an unknown word that is no directory is an unknown command, not a build', async () => {
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: unknown command: frobnicate');
    expect(r.stderr).toContain('./frobnicate');
  });

  it('help for an unknown command is a usage error', async () => {
    const r = await cli(['help', 'histroy']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean "history"?');
  });

  it('a path-looking word builds (docker build compatible), skipping flag values', async () => {
    const r = await cli(['--root', root, '-t', 'images', './no-such-dir']);
    expect(r.stderr).not.toContain('unknown command');
    expect(r.stderr).toMatch(/cannot read Dockerfile .*no-such-dir\/Dockerfile/);
    expect(r.code).toBe(5);
  });

  it('global flags may come before the command word', async () => {
    const r = await cli(['--root', root, 'images']);
    expect(r).toEqual({ code: 0, stdout: 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n', stderr: '' });
  });

  it('an unknown flag is a usage error (exit 2)', async () => {
    const r = await cli(['images', '--root', root, '--nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: unknown flag: --nope\nhint: see --help\n');
  });
});

describe('README CLI reference', () => {
  it('documents every command and every flag', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const reference = readme.slice(readme.indexOf('## CLI reference'), readme.indexOf('### Progress'));
    const missing: string[] = [];
    for (const [name, c] of Object.entries(COMMANDS)) {
      if (!reference.includes(`\`${name}`)) missing.push(name);
      for (const f of c.flags) if (!reference.includes(`--${f.name}`)) missing.push(`${name} --${f.name}`);
    }
    expect(missing).toEqual([]);
  });
});
