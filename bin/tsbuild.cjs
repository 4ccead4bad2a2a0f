#!/usr/bin/env node
// Start-up shim, run by the bin/tsbuild launcher (which defers NODE_EXTRA_CA_CERTS; running this
// file directly works too and pays for those certificates at start-up). All behaviour lives in the
// CLI, bundled into one CommonJS file (scripts/bundle.mjs) that is compiled here with V8's code
// cache: a warm no-change build is mostly process start-up, and compiling the bundle's functions
// again on every run cost ~30 ms of CPU. The cache sits next to the bundle (same trust as the code
// itself, never a shared temp dir); it is written after the first successful command and again
// whenever V8 rejects it (another Node version). Failing to write it (read-only install) only
// costs that time.
// CommonJS (bin/package.json): an ES module entry point costs the ESM loader's start-up, ~5 ms.
'use strict';
const { readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const file = join(__dirname, '..', 'dist', 'tsbuild.cjs');
const cacheFile = `${file}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // no cache yet
}
// The bundle is already wrapped as Module.wrap() would wrap it, and pure ASCII (scripts/bundle.mjs):
// latin1 makes one flat one-byte string of it with no UTF-8 decoding and nothing to concatenate.
const source = readFileSync(file, 'latin1');
const script = new Script(source, { filename: file, ...(cachedData ? { cachedData } : {}) });
const cli = { exports: {} };
script.runInThisContext()(cli.exports, createRequire(file), cli, file, dirname(file));
if (cachedData === undefined || script.cachedDataRejected) {
  const command = process.argv[2] ?? '';
  process.once('exit', (code) => {
    if (code !== 0 || ['version', '--version', 'help', '--help', '-h', ''].includes(command)) return;
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      rmSync(tmp, { force: true });
    }
  });
}
cli.exports.run();
