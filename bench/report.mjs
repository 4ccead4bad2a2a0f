// Turns a bench/run.sh results folder (hyperfine JSON + rss.tsv) into the BENCHMARKS.md table:
// median and min–max wall time per tool, peak RSS, and tsbuild's ratio to each peer (< 1 = faster).
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: node bench/report.mjs RESULTS_DIR');
const rss = new Map();
if (existsSync(join(dir, 'rss.tsv'))) {
  for (const line of readFileSync(join(dir, 'rss.tsv'), 'utf8').split('\n').filter(Boolean)) {
    const [name, tool, kb] = line.split('\t');
    rss.set(`${name}/${tool}`, Number(kb));
  }
}
const s = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
const cell = (r) => (r === undefined ? '–' : `${s(r.median)} s (${s(r.min)}–${s(r.max)})`);
const mb = (kb) => (kb === undefined || Number.isNaN(kb) ? '–' : `${Math.round(kb / 1024)} MB`);
const ratio = (a, b) => (a === undefined || b === undefined ? '–' : `${(a.median / b.median).toFixed(2)}x`);
const rows = ['| workload | tsbuild | BuildKit | buildah | tsbuild/BuildKit | tsbuild/buildah | peak RSS tsbuild / BuildKit client / buildah |', '|---|---|---|---|---|---|---|'];
for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
  const name = file.replace(/\.json$/, '');
  const by = Object.fromEntries(JSON.parse(readFileSync(join(dir, file), 'utf8')).results.map((r) => [r.command, r]));
  rows.push(`| ${name} | ${cell(by.tsbuild)} | ${cell(by.buildkit)} | ${cell(by.buildah)} | ${ratio(by.tsbuild, by.buildkit)} | ${ratio(by.tsbuild, by.buildah)} | ${mb(rss.get(`${name}/tsbuild`))} / ${mb(rss.get(`${name}/buildkit`))} / ${mb(rss.get(`${name}/buildah`))} |`);
}
console.log(rows.join('\n'));
