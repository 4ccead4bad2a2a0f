#!/usr/bin/env bash
# Runs every workload with hyperfine, tsbuild and the peers in the same hyperfine invocation, then
# one extra run of each under /usr/bin/time for peak RSS, and prints the table (bench/report.mjs).
#   BENCH_RUNS=5 (runs per command)   BENCH_ONLY="app ctx" (subset of: app big ctx push pull)
source "$(dirname "$0")/lib.sh"
RUNS="${BENCH_RUNS:-5}"
ONLY="${BENCH_ONLY:-app big ctx push pull}"
OUT="$WORK/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
bash "$BENCH_DIR/setup.sh"

TS="$TSBUILD build --progress quiet"
BK="env DOCKER_BUILDKIT=1 $DOCKER build --network host -q"
BA="$BUILDAH bud --layers --network host -q"

# hyperfine over the three tools: NAME PREPARE WARMUP CMD_TS CMD_BK CMD_BA
hf() {
  local name="$1" prepare="$2" warmup="$3"; shift 3
  log "$name"
  hyperfine --style basic --runs "$RUNS" --warmup "$warmup" ${prepare:+--prepare "$prepare"} \
    --export-json "$OUT/$name.json" -n tsbuild "$1" -n buildkit "$2" ${3:+-n buildah "$3"} >"$OUT/$name.txt" 2>&1 \
    || { cat "$OUT/$name.txt" >&2; exit 1; }
  # Peak RSS of one more run of each (docker: the client only; BuildKit's work happens in dockerd).
  local tool cmd
  for pair in "tsbuild|$1" "buildkit|$2" ${3:+"buildah|$3"}; do
    tool="${pair%%|*}"; cmd="${pair#*|}"
    [ -n "$prepare" ] && bash -c "$prepare"
    /usr/bin/time -f "%M" -o "$OUT/rss.tmp" bash -c "$cmd" >/dev/null 2>&1 || true
    printf '%s\t%s\t%s\n' "$name" "$tool" "$(tail -1 "$OUT/rss.tmp")" >> "$OUT/rss.tsv"
  done
}

edit() { echo "bash -c 'echo \"// edit \$RANDOM\$RANDOM\" >> $1'"; }

for w in $ONLY; do case "$w" in
  app)
    hf app-cold "" 0 "$TS --no-cache -t bench/app:ts $WORK/app" "$BK --no-cache -t bench/app:bk $WORK/app" "$BUILDAH bud --no-cache --network host -q -t bench/app:ba $WORK/app"
    hf app-warm "" 1 "$TS -t bench/app:ts $WORK/app" "$BK -t bench/app:bk $WORK/app" "$BA -t bench/app:ba $WORK/app"
    hf app-edit "$(edit "$WORK/app/src/m7.js")" 1 "$TS -t bench/app:ts $WORK/app" "$BK -t bench/app:bk $WORK/app" "$BA -t bench/app:ba $WORK/app" ;;
  big)
    hf big-run "" 0 "$TS --no-cache -t bench/bigrun:ts $WORK/bigrun" "$BK --no-cache -t bench/bigrun:bk $WORK/bigrun" "$BUILDAH bud --no-cache --network host -q -t bench/bigrun:ba $WORK/bigrun" ;;
  ctx)
    hf ctx-cold "" 0 "$TS --no-cache -t bench/ctx:ts $WORK/ctx30k" "$BK --no-cache -t bench/ctx:bk $WORK/ctx30k" "$BUILDAH bud --no-cache --network host -q -t bench/ctx:ba $WORK/ctx30k"
    hf ctx-warm "" 1 "$TS -t bench/ctx:ts $WORK/ctx30k" "$BK -t bench/ctx:bk $WORK/ctx30k" "$BA -t bench/ctx:ba $WORK/ctx30k"
    hf ctx-edit "$(edit "$WORK/ctx30k/files/d7/f7.txt")" 1 "$TS -t bench/ctx:ts $WORK/ctx30k" "$BK -t bench/ctx:bk $WORK/ctx30k" "$BA -t bench/ctx:ba $WORK/ctx30k" ;;
  push)
    # Each tool pushes the 400 MB image it built to a fresh, empty registry. tsbuild's compressed-layer
    # cache is dropped before every run so it compresses as the peers do.
    "$TSBUILD" images | grep -q '^bench/bigrun ' || $TS -t bench/bigrun:ts "$WORK/bigrun" >/dev/null
    $DOCKER image inspect bench/bigrun:bk >/dev/null 2>&1 || $BK -t bench/bigrun:bk "$WORK/bigrun" >/dev/null
    buildah inspect --type image bench/bigrun:ba >/dev/null 2>&1 || $BUILDAH bud --network host -q -t bench/bigrun:ba "$WORK/bigrun" >/dev/null
    $DOCKER tag bench/bigrun:bk "$REGISTRY/bench/bigrun:bk"
    hf push "bash $BENCH_DIR/registry.sh restart && rm -rf $TSBUILD_ROOT/cache/compressed" 0 \
      "$TSBUILD push bench/bigrun:ts $REGISTRY/bench/bigrun:ts" \
      "$DOCKER push -q $REGISTRY/bench/bigrun:bk" \
      "buildah push -q --tls-verify=false bench/bigrun:ba docker://$REGISTRY/bench/bigrun:ba"
    # What each tool sent: compressed layer sizes as the registry holds them (speed is only half the
    # story). Every timed run started from an empty registry, so push each once more (tsbuild's cache
    # is warm by now) next to the buildah push the last run left there.
    "$TSBUILD" push bench/bigrun:ts "$REGISTRY/bench/bigrun:ts" >/dev/null
    $DOCKER push -q "$REGISTRY/bench/bigrun:bk" >/dev/null
    buildah push -q --tls-verify=false bench/bigrun:ba "docker://$REGISTRY/bench/bigrun:ba" >/dev/null
    for tag in ts bk ba; do
      curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY/v2/bench/bigrun/manifests/$tag" \
        | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(process.argv[1]+"\t"+JSON.parse(s).layers.map(l=>l.size).join("\t")))' "$tag" >> "$OUT/push-sizes.tsv"
    done
    ;;
  pull)
    # One image (pushed by tsbuild), pulled and extracted by each tool into an empty local state.
    bash "$BENCH_DIR/registry.sh" restart
    "$TSBUILD" push bench/bigrun:ts "$REGISTRY/bench/bigrun:pull" >/dev/null
    hf pull "rm -rf $WORK/pull-store; $DOCKER rmi -f $REGISTRY/bench/bigrun:pull >/dev/null 2>&1; buildah rmi -f $REGISTRY/bench/bigrun:pull >/dev/null 2>&1; true" 0 \
      "$TSBUILD pull --root $WORK/pull-store $REGISTRY/bench/bigrun:pull" \
      "$DOCKER pull -q $REGISTRY/bench/bigrun:pull" \
      "buildah pull -q --tls-verify=false $REGISTRY/bench/bigrun:pull"
    ;;
esac; done
node "$BENCH_DIR/report.mjs" "$OUT" | tee "$OUT/table.md"
