// Bundles the CLI into one CommonJS file, dist/tsbuild.cjs, which bin/tsbuild loads through V8's
// code cache (see bin/tsbuild). Why: a warm no-change build is dominated by process start-up, and
// resolving, reading and compiling ~150 separate ES modules cost ~70 ms of it. CommonJS because
// only a classic script can be compiled with a code cache on Node 20 (ES modules cannot); dynamic
// imports become require() (Node 20.19+ loads the ESM-only `ora` that way). Packages stay external.
// The library entry point (dist/src/index.js) is still the plain tsc output.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: [new URL('../dist/src/cli/main.js', import.meta.url).pathname],
  outfile: new URL('../dist/tsbuild.cjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // ora is ESM-only: bundled (and evaluated only when a tty progress display starts) rather than
  // require()d, whose namespace object esbuild's CommonJS interop would mistake for the default export.
  external: ['undici', '@napi-rs/xattr'],
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__tsbuildModuleUrl' },
  banner: { js: "const __tsbuildModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
// A code cache made for the previous bundle would only be rejected; start clean.
rmSync(new URL('../dist/tsbuild.cjs.cache', import.meta.url).pathname, { force: true });
