// Compiles the native helpers into dist/native/:
// - native/*.c → static executables. The sandbox launcher: Node cannot unshare or pivot_root
//   itself (it is multi-threaded), so a tiny C helper does those syscalls.
// - native/addon/*.c → N-API addons (<name>.node): flock(2) and mknod(2), which Node lacks and which
//   otherwise cost a process spawn per call; sync_file_range(2) to start a large blob's writeback
//   early. N-API is ABI-stable, so only Node's headers are needed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const srcDir = new URL('../native/', import.meta.url).pathname;
const outDir = new URL('../dist/native/', import.meta.url).pathname;
const cc = process.env.CC ?? 'cc';
mkdirSync(outDir, { recursive: true });
const cFiles = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.c')) : []);

for (const file of cFiles(srcDir)) {
  const out = join(outDir, basename(file, '.c'));
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-static-pie', '-o', out, join(srcDir, file)], { stdio: 'inherit' });
}

const addonDir = join(srcDir, 'addon');
const nodeInclude = [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node'].find((d) => existsSync(join(d, 'node_api.h')));
if (cFiles(addonDir).length > 0 && nodeInclude === undefined) {
  throw new Error(`node_api.h not found next to ${process.execPath} nor in /usr/include/node (install Node's headers)`);
}
for (const file of cFiles(addonDir)) {
  const out = join(outDir, `${basename(file, '.c')}.node`);
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Werror', '-shared', '-fPIC', `-I${nodeInclude}`, '-o', out, join(addonDir, file), '-lm'], { stdio: 'inherit' });
}
