/**
 * Errors through the CLI: one clear message, the Dockerfile line with a caret, a failed RUN with
 * its command, exit code and last output lines, the README's exit-code table, stack traces only
 * with --debug, and the store left as it was.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/cli/exit.js';
import { openStore, type Store } from '../../src/store/index.js';
import type { ErrorCode } from '../../src/util/errors.js';
import { buildBusybox } from '../builder/helpers.js';
import { cli, removeAll, tempDir, writeTree } from './helpers.js';

const dirs: string[] = [];
let root: string;
let store: Store;

beforeAll(async () => {
  root = await tempDir('errors');
  dirs.push(root);
  store = await openStore(root);
  await buildBusybox(store);
});
afterAll(() => removeAll(dirs));

async function context(files: Record<string, string>): Promise<string> {
  const dir = await tempDir('errors-ctx');
  dirs.push(dir);
  return writeTree(dir, files);
}

describe('Dockerfile errors', () => {
  it('show file:line, the line and a caret, the suggestion once, exit 3', async () => {
    const ctx = await context({ Dockerfile: 'FROM scratch\nCOPY a.txt /\nRUNN echo hi\n', 'a.txt': 'a' });
    const r = await cli(['--root', root, '-t', 'x:1', ctx]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('error: unknown instruction: RUNN (did you mean RUN?)\n --> Dockerfile:3:1\n     3 | RUNN echo hi\n       | ^\n');
    expect(await store.tags.get('docker.io/library/x:1')).toBeUndefined();
  });

  it('print the stack only with --debug', async () => {
    const ctx = await context({ Dockerfile: 'FROM scratch\nRUNN x\n' });
    const plain = await cli(['--root', root, ctx]);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    const debug = await cli(['--root', root, '--debug', ctx]);
    expect(debug.code).toBe(3);
    expect(debug.stderr).toMatch(/^error: unknown instruction: RUNN/);
    expect(debug.stderr).toMatch(/\n\s+at .*parse/);
  });
});

describe('a failed RUN', () => {
  it('names the command, its exit code and the last lines of output; no tag is written', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox:local\nRUN for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; done; exit 3\n' });
    const before = await store.tags.list();
    const r = await cli(['--root', root, '--progress', 'plain', '-t', 'fail:1', ctx]);
    expect(r.code).toBe(1);
    const cmd = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; done; exit 3';
    const message = `process "/bin/sh -c ${cmd}" did not complete successfully: exit code: 3`;
    // BuildKit's plain progress: the step, its output with timestamps, ERROR, then the ------ block.
    expect(r.stderr).toContain(`#2 [2/2] RUN ${cmd}\n#2 0.`);
    expect(r.stderr).toMatch(/\n#2 \d+\.\d{3} line12\n/);
    expect(r.stderr).toMatch(new RegExp(`#2 ERROR: ${esc(message)}\n------\n > \\[2/2\\] RUN ${esc(cmd)}:\n(\\d+\\.\\d{3} line\\d+\n){6}------\n`));
    // The final message: one error line, the Dockerfile line, and the tail of the output as the hint.
    const tail = r.stderr.slice(r.stderr.lastIndexOf('error: '));
    expect(tail).toMatch(new RegExp(`^error: ${esc(message)}\n --> Dockerfile:2\n {5}2 \\| RUN ${esc(cmd)}\nhint: last output:\n(  line\\d+\n)+$`));
    expect(tail).toContain('  line12\n');
    expect(await store.tags.list()).toEqual(before);
  });
});

describe('exit codes', () => {
  it('the README table documents exactly the codes the CLI uses', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const documented: Partial<Record<ErrorCode, number>> = {};
    const section = readme.slice(readme.indexOf('### Exit codes'));
    for (const m of section.matchAll(/^\| (\d+) \|[^|]*\|([^|]*)\|$/gm)) {
      for (const code of (m[2] ?? '').matchAll(/`([A-Z_]+)`/g)) documented[code[1] as ErrorCode] = Number(m[1]);
    }
    expect(documented).toEqual(EXIT_CODES);
    expect(section).toMatch(/^\| 0 \|/m);
  });

  it('each documented status comes out of the CLI', async () => {
    const ok = await context({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a' });
    const fails = await context({ Dockerfile: 'FROM busybox:local\nRUN exit 7\n' });
    const bad = await context({ Dockerfile: 'FROM scratch\nCOPY\n' });
    const notDir = join(await tempDir('errors-file'), 'file');
    dirs.push(join(notDir, '..'));
    await writeFile(notDir, 'not a store');
    const cases: [string[], number][] = [
      [['--root', root, '-q', ok], 0],
      [['--root', root, '-q', fails], 1],
      [['--root', root, 'images', '--bogus'], 2],
      [['--root', root, bad], 3],
      [['--root', root, 'tag', 'busybox:local', 'NOT/valid:tag:x'], 4],
      [['--root', root, 'history', 'nope:404'], 5],
      [['--root', notDir, 'images'], 6],
    ];
    for (const [argv, code] of cases) {
      const r = await cli(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code });
      if (code !== 0) expect(r.stderr).toMatch(/^error: /);
    }
  });

  it('an interrupted build exits 130 and leaves no tag', async () => {
    const ctx = await context({ Dockerfile: 'FROM busybox:local\nRUN sleep 30\n' });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('received SIGINT')), 2500);
    const r = await cli(['--root', root, '--progress', 'quiet', '-t', 'slow:1', ctx], { signal: controller.signal });
    clearTimeout(timer);
    expect(r).toEqual({ code: 130, stdout: '', stderr: 'interrupted\n' });
    expect(await store.tags.get('docker.io/library/slow:1')).toBeUndefined();
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
