// Compiles the sandbox launcher (native/*.c) into dist/native/. Node cannot unshare or
// pivot_root itself (it is multi-threaded), so a tiny C helper does those syscalls.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';

const srcDir = new URL('../native/', import.meta.url).pathname;
const outDir = new URL('../dist/native/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
const sources = existsSync(srcDir) ? readdirSync(srcDir).filter((f) => f.endsWith('.c')) : [];
for (const file of sources) {
  const out = join(outDir, basename(file, '.c'));
  const cc = process.env.CC ?? 'cc';
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-static-pie', '-o', out, join(srcDir, file)], { stdio: 'inherit' });
}
