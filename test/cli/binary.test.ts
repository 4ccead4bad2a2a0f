/**
 * The compiled package: the library example (examples/api/build.mjs, importing 'tsbuild' through the
 * package's `exports`) and the tty progress of `bin/tsbuild` in a real terminal (tmux): spinners with
 * elapsed time and live output while RUN runs, CACHED marks and the summary at the end, and a clean
 * screen afterwards (no spinner frames left, cursor visible, the shell prompt back).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { buildBusybox } from '../builder/helpers.js';
import { cli, removeAll, tempDir, writeTree } from './helpers.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SPINNER = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/;
const dirs: string[] = [];

beforeAll(async () => {
  // Compile src → dist. A type error elsewhere in the tree still emits; what matters is that our entry points exist.
  await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO }).catch(() => undefined);
  await run('node', ['scripts/bundle.mjs'], { cwd: REPO });
  expect(existsSync(`${REPO}dist/src/index.js`) && existsSync(`${REPO}dist/tsbuild.cjs`)).toBe(true);
}, 300_000);
afterAll(() => removeAll(dirs));

describe('library API example', () => {
  it('examples/api/build.mjs builds a FROM scratch image and prints its digest and history', async () => {
    const { stdout } = await run('node', ['examples/api/build.mjs'], { cwd: REPO, env: { PATH: process.env.PATH ?? '' } });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('step 1/2: FROM scratch');
    expect(lines[1]).toBe('step 2/2: COPY hello.txt /hello.txt');
    expect(lines[2]).toMatch(/^digest: sha256:[a-f0-9]{64}$/);
    expect(lines[3]).toMatch(/^image id: sha256:[a-f0-9]{64}$/);
    expect(lines[4]).toBe('tags: example/hello:api  layers: 1  cmd: ["/hello.txt"]');
    expect(lines.slice(5)).toEqual(['history: CMD ["/hello.txt"] (0 bytes)', 'history: COPY hello.txt /hello.txt # buildkit (2048 bytes)']);
  });
});

describe('bin/tsbuild start-up', () => {
  it('compiles the bundle with a V8 code cache it writes after a successful command and rewrites when rejected', async () => {
    const cache = `${REPO}dist/tsbuild.cjs.cache`;
    const root = await tempDir('codecache');
    const images = (): Promise<string> => run(`${REPO}bin/tsbuild`, ['--root', root, 'images']).then((r) => r.stdout);
    rmSync(cache, { force: true });
    await run(`${REPO}bin/tsbuild`, ['version']);
    expect(existsSync(cache)).toBe(false); // version/help never write it: too little code has run
    const first = await images();
    expect(first).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID/);
    const written = readFileSync(cache);
    expect(written.length).toBeGreaterThan(10_000);
    expect(await images()).toBe(first); // accepted: used as is, not rewritten
    expect(readFileSync(cache).equals(written)).toBe(true);
    writeFileSync(cache, Buffer.alloc(4096, 7)); // garbage (or another Node's cache): rejected, not trusted
    expect(await images()).toBe(first);
    expect(readFileSync(cache).length).toBeGreaterThan(10_000);
  });
});

describe('tty progress in a real terminal', () => {
  const socket = `tsbuild-test-${process.pid}`;
  const tmux = (...args: string[]): Promise<string> => run('tmux', ['-L', socket, ...args]).then((r) => r.stdout);
  afterAll(async () => {
    await tmux('kill-server').catch(() => undefined);
  });

  it('shows spinners, elapsed time, live output, CACHED and a summary, then leaves the screen clean', async () => {
    const root = await tempDir('tty');
    const ctx = await tempDir('tty-ctx');
    dirs.push(root, ctx);
    await buildBusybox(await openStore(root));
    // Warm the cache for FROM + COPY so the terminal build shows a CACHED step before the RUN.
    await writeTree(ctx, { Dockerfile: 'FROM busybox:local\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    expect((await cli(['--root', root, '-q', ctx])).code).toBe(0);
    await writeTree(ctx, { Dockerfile: 'FROM busybox:local\nCOPY a.txt /a.txt\nRUN for i in 1 2 3 4 5 6 7 8; do echo tick$i; sleep 0.4; done\n' });

    await tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', 'main', 'env -u CI PS1="PROMPT\\$ " bash --norc --noprofile');
    await tmux('send-keys', '-t', 'main', `${REPO}bin/tsbuild --root ${root} -t tty:1 ${ctx}; echo EXIT=$?`, 'Enter');
    const frames: string[] = [];
    let screen = '';
    for (let i = 0; i < 300 && !/EXIT=\d+/.test(screen); i++) {
      await new Promise((r) => setTimeout(r, 100));
      screen = await tmux('capture-pane', '-p', '-t', 'main');
      frames.push(screen);
    }
    expect(screen).toContain('EXIT=0');
    // While RUN ran: a spinner frame on the step's line with its elapsed seconds, and its output tail below.
    const running = frames.filter((f) => new RegExp(`${SPINNER.source} \\[3/3\\] RUN for i in .* \\d+\\.\\ds\\n\\s+tick\\d`).test(f));
    expect(running.length).toBeGreaterThan(1);
    const spinnerChars = new Set(running.map((f) => SPINNER.exec(f)?.[0]));
    expect(spinnerChars.size).toBeGreaterThan(1);
    // At the end: permanent lines with CACHED, the layer size and the summary; no spinner left; prompt back.
    expect(screen).toMatch(/✔ \[2\/3\] COPY a\.txt \/a\.txt CACHED\n/);
    expect(screen).toMatch(/✔ \[3\/3\] RUN for i in .* \d+\.\ds \d+(\.\d+)?[kM]?B\n/);
    expect(screen).toMatch(/\nBuilt [a-f0-9]{12} in \d+\.\ds: 1 steps run, 1 cached; tagged docker\.io\/library\/tty:1\nEXIT=0\nPROMPT\$\s*$/);
    expect(SPINNER.test(screen)).toBe(false);
    expect(screen).not.toMatch(/^\s+tick\d/m);
    expect((await tmux('display-message', '-p', '-t', 'main', '#{cursor_flag}')).trim()).toBe('1');

    // Two stages running at once: a spinner on each running step's line.
    await writeTree(ctx, { Dockerfile: 'FROM busybox:local AS a\nRUN sleep 2; echo a > /a\nFROM busybox:local AS b\nRUN sleep 2; echo b > /b\nFROM busybox:local\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n' });
    await tmux('send-keys', '-t', 'main', 'clear', 'Enter');
    await tmux('send-keys', '-t', 'main', `${REPO}bin/tsbuild --root ${root} ${ctx}; echo EXIT=$?`, 'Enter');
    const parallel: string[] = [];
    screen = '';
    for (let i = 0; i < 300 && !/EXIT=\d+/.test(screen); i++) {
      await new Promise((r) => setTimeout(r, 100));
      screen = await tmux('capture-pane', '-p', '-t', 'main');
      parallel.push(screen);
    }
    expect(screen).toContain('EXIT=0');
    const both = new RegExp(`${SPINNER.source} \\[(a|b) 2/2\\] RUN sleep 2; echo \\w > /\\w \\d+\\.\\ds\\n${SPINNER.source} \\[(a|b) 2/2\\] RUN sleep 2`);
    expect(parallel.some((f) => both.test(f))).toBe(true);
    expect(SPINNER.test(screen)).toBe(false);

    // A failing step: ✖ mark, the error below it, and the terminal just as clean.
    await writeTree(ctx, { Dockerfile: 'FROM busybox:local\nRUN echo about to fail; sleep 0.5; exit 4\n' });
    await tmux('send-keys', '-t', 'main', 'clear', 'Enter');
    await tmux('send-keys', '-t', 'main', `${REPO}bin/tsbuild --root ${root} ${ctx}; echo EXIT=$?`, 'Enter');
    screen = '';
    for (let i = 0; i < 300 && !/EXIT=\d+/.test(screen); i++) {
      await new Promise((r) => setTimeout(r, 100));
      screen = await tmux('capture-pane', '-p', '-t', 'main');
    }
    expect(screen).toMatch(/✖ \[2\/2\] RUN echo about to fail; sleep 0\.5; exit 4 ERROR\nerror: process "\/bin\/sh -c echo about to fail; sleep 0\.5; exit 4" did not complete successfully: exit code: 4\n/);
    expect(screen).toMatch(/hint: last output:\n {2}about to fail\nEXIT=1\nPROMPT\$\s*$/);
    expect(SPINNER.test(screen)).toBe(false);
    expect((await tmux('display-message', '-p', '-t', 'main', '#{cursor_flag}')).trim()).toBe('1');
  });
});
