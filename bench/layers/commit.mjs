// Layer commit benchmark (driven by commit.sh).
//   node commit.mjs gen DIR    — a 400 MB / 4,000-file upper dir: half random bytes, half text
//   node commit.mjs run DIR    — commitLayer (diffID throughput), then gzip via compressLayer
// Prints one JSON line of figures; commit.sh adds peak RSS from /usr/bin/time -v.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [mode, dir] = process.argv.slice(2);
const FILES = Number(process.env.BENCH_FILES ?? 4000);
const TOTAL = Number(process.env.BENCH_BYTES ?? 400e6);

async function gen() {
  const size = Math.floor(TOTAL / FILES);
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor 0123456789\n';
  const text = Buffer.from(line.repeat(Math.ceil(size / line.length))).subarray(0, size);
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, `d${String(i % 40).padStart(2, '0')}`);
    if (i < 40) await mkdir(sub, { recursive: true });
    // Text files differ by a header line so no two are identical.
    const body = i % 2 === 0 ? randomBytes(size) : Buffer.concat([Buffer.from(`file ${i}\n`), text.subarray(0, size - 16)]);
    await writeFile(join(sub, `f${i}`), body);
  }
}

async function run() {
  const root = new URL('../../dist/src/', import.meta.url);
  const { openStore } = await import(new URL('store/index.js', root).href);
  const { commitLayer, compressLayer } = await import(new URL('layers/index.js', root).href);
  const storeDir = await mkdtemp(join(process.env.BENCH_TMP ?? tmpdir(), 'tsbuild-bench-store-'));
  try {
    const store = await openStore(storeDir);
    let t = performance.now();
    let cpu = process.cpuUsage();
    const { diffId, size } = await commitLayer(store, dir, [], { sourceDateEpoch: 0 });
    const commitS = (performance.now() - t) / 1000;
    const commitCpu = process.cpuUsage(cpu);
    t = performance.now();
    cpu = process.cpuUsage();
    const gz = await compressLayer(store, diffId, { format: 'gzip' });
    const gzipS = (performance.now() - t) / 1000;
    const gzipCpu = process.cpuUsage(cpu);
    const cpuPct = (u) => Math.round(((u.user + u.system) / 1e6 / (u === gzipCpu ? gzipS : commitS)) * 100);
    console.log(JSON.stringify({
      diffId, tarBytes: size, commitSeconds: +commitS.toFixed(2), diffIdMBps: +(size / 1e6 / commitS).toFixed(1),
      commitCpuPct: cpuPct(commitCpu), gzipBytes: gz.size, gzipSeconds: +gzipS.toFixed(2),
      gzipMBps: +(size / 1e6 / gzipS).toFixed(1), gzipCpuPct: cpuPct(gzipCpu),
    }));
  } finally {
    await rm(storeDir, { recursive: true, force: true });
  }
}

if (dir === undefined || (mode !== 'gen' && mode !== 'run')) {
  console.error('usage: node commit.mjs gen|run DIR');
  process.exit(2);
}
await (mode === 'gen' ? gen() : run());
