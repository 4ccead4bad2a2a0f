/**
 * Runs a snippet of ESM in a separate node process that can import the TypeScript sources
 * (a tiny loader transpiles .ts with the project's own TypeScript), for crash/lock tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const REPO = new URL('../../', import.meta.url).pathname;

const LOADER = `
import { readFileSync } from 'node:fs';
import ts from '${REPO}node_modules/typescript/lib/typescript.js';
export async function resolve(spec, ctx, next) {
  try { return await next(spec, ctx); } catch (err) {
    if (spec.endsWith('.js')) return next(spec.slice(0, -3) + '.ts', ctx);
    throw err;
  }
}
export async function load(url, ctx, next) {
  if (!url.endsWith('.ts')) return next(url, ctx);
  const out = ts.transpileModule(readFileSync(new URL(url), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}`;

/** Spawns `node` running `code` (which may import `${SRC}/...ts`); returns the child. */
export function runChild(dir: string, code: string, args: string[] = []): ChildProcess {
  const loader = join(dir, 'ts-loader.mjs');
  const register = join(dir, 'register.mjs');
  const script = join(dir, `child-${Math.random().toString(16).slice(2)}.mjs`);
  writeFileSync(loader, LOADER);
  writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(`file://${loader}`)});`);
  writeFileSync(script, code.replaceAll('${SRC}', `${REPO}src`));
  return spawn(process.execPath, ['--import', register, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolves when the child prints `line` on stdout. */
export function waitForLine(child: ChildProcess, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes(line)) resolve();
    });
    child.on('exit', (code) => reject(new Error(`child exited ${code} before "${line}": ${err}`)));
  });
}
