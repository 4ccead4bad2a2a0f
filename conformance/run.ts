/** CLI: node dist/conformance/run.js <shared-dir>. Exit 0 when every suite passes. */
import { hasConformanceData, runAll } from './checks.js';

function main(argv: string[]): number {
  const shared = argv[2];
  if (shared === undefined || !hasConformanceData(shared)) {
    console.log('no conformance data');
    return 0;
  }
  let failed = 0;
  for (const r of runAll(shared)) {
    const ok = r.total - r.failures.length;
    console.log(`${r.failures.length === 0 ? 'PASS' : 'FAIL'} ${r.suite}: ${ok}/${r.total}`);
    for (const f of r.failures) console.log(`  ✗ ${f.name}\n${f.detail}`);
    failed += r.failures.length;
  }
  return failed === 0 ? 0 : 1;
}

process.exitCode = main(process.argv);
