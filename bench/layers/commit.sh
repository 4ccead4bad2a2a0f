#!/usr/bin/env bash
# Commit benchmark: builds dist/ if needed, creates a 400 MB / 4,000-file upper dir (half random,
# half text), commits it with commitLayer (diffID throughput), gzips it with compressLayer
# (parallel gzip: CPU% > 100 means both cores were used) and reports peak RSS.
# Targets: >= 300 MB/s diffID, RSS < 150 MB.   BENCH_FILES / BENCH_BYTES / BENCH_TMP override.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# dist/ must hold the current sources (tsc emits even when another file has type errors).
[ -n "${BENCH_NO_BUILD:-}" ] || (cd "$ROOT" && npx tsc -p tsconfig.build.json) || echo "warning: tsc reported errors; using what it emitted" >&2
WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/tsbuild-bench-commit-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
node "$HERE/commit.mjs" gen "$WORK/upper"
sync
/usr/bin/time -v -o "$WORK/time.txt" node "$HERE/commit.mjs" run "$WORK/upper" > "$WORK/result.json"
RSS_KB="$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.txt")"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  r.peakRssMB = Math.round(Number(process.argv[2]) / 1024);
  console.log(JSON.stringify(r, null, 2));
  console.log(`diffID ${r.diffIdMBps} MB/s (target >= 300), gzip ${r.gzipSeconds}s at ${r.gzipCpuPct}% CPU (> 100% = both cores), peak RSS ${r.peakRssMB} MB (target < 150)`);
' "$WORK/result.json" "$RSS_KB"
