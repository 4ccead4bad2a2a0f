// Bundles the CLI into one CommonJS file, dist/tsbuild.cjs, which bin/tsbuild loads through V8's
// code cache (see bin/tsbuild.cjs). The file is the module already inside Node's CommonJS wrapper
// (`(function (exports, require, module, __filename, __dirname) { ... });`), so the shim compiles it
// exactly as read: building that string at start-up (reading the file as UTF-8, then concatenating
// it into the wrapper, which V8 flattens into one more copy before compiling) cost ~25 ms of a
// 70 ms start on this VM, where every page of fresh memory is a fault the host must back (each
// copy is a new large-object page run); read as latin1 the flat file is one copy.
// Why bundle: a warm no-change build is dominated by process start-up, and resolving, reading and
// compiling ~150 separate ES modules cost ~70 ms of it. CommonJS because only a classic script can
// be compiled with a code cache on Node 20 (ES modules cannot); dynamic imports become require()
// (Node 20.19+ loads the ESM-only `ora` that way). Packages stay external.
// The library entry point (dist/src/index.js) is still the plain tsc output.
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

// Built-in modules loaded on first use: a warm (all-cached) build spawns nothing and opens no
// socket, yet requiring node:child_process (which pulls in node:net) at start-up cost ~9 ms of its
// ~120 ms (cpu profile, compileForPublicLoader). Each gets a stand-in module whose functions
// require the real one when first called; the names are the ones src/ imports.
const LAZY = {
  'node:child_process': ['spawn', 'execFile'],
  'node:net': ['connect', 'createServer'],
  'node:worker_threads': ['Worker'],
};
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:(child_process|net|worker_threads)$/ }, (args) =>
      // The stand-in's own require() is of the real module.
      args.namespace === 'lazy-builtin' ? { path: args.path, external: true } : { path: args.path, namespace: 'lazy-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      loader: 'js',
      contents: [
        `let mod;`,
        `const load = () => (mod ??= require(${JSON.stringify(args.path)}));`,
        // \`new\` is passed through: Worker is a class.
        ...LAZY[args.path].map((name) => `export function ${name}(...a) { return new.target ? new (load().${name})(...a) : load().${name}(...a); }`),
      ].join('\n'),
    }));
  },
};

await build({
  entryPoints: [new URL('../dist/src/cli/main.js', import.meta.url).pathname],
  outfile: new URL('../dist/tsbuild.cjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // ora is ESM-only: bundled (and evaluated only when a tty progress display starts) rather than
  // require()d, whose namespace object esbuild's CommonJS interop would mistake for the default export.
  external: ['undici'],
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__tsbuildModuleUrl' },
  // "use strict" first in the wrapper's body, where it is a directive: src/ is ES modules, strict
  // throughout (esbuild's own "use strict" comes after the banner, where it is only an expression).
  banner: { js: "(function (exports, require, module, __filename, __dirname) { 'use strict'; const __tsbuildModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  footer: { js: '});' },
  plugins: [lazyBuiltins],
  sourcemap: 'linked',
  logLevel: 'warning',
});
// Pure ASCII, or Node decodes the whole bundle into a two-byte string on every start (~1.5 ms of a
// 65 ms warm build). esbuild escapes strings but keeps regex literals and some comments as written.
const out = readFileSync(new URL('../dist/tsbuild.cjs', import.meta.url).pathname, 'utf8');
const nonAscii = out.search(/[^\x00-\x7f]/);
if (nonAscii >= 0) {
  const line = out.slice(0, nonAscii).split('\n').length;
  throw new Error(`dist/tsbuild.cjs:${line}: non-ASCII character; write it as an escape (\\u00b5) in src/, or reword the comment`);
}
// A code cache made for the previous bundle would only be rejected; start clean.
rmSync(new URL('../dist/tsbuild.cjs.cache', import.meta.url).pathname, { force: true });
