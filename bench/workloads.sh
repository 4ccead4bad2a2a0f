#!/usr/bin/env bash
# Generates the workload contexts under $WORK/ (deterministic content; re-run is a no-op).
source "$(dirname "$0")/lib.sh"

# 1. Two-stage app: a RUN writing 2,000 small dependency files, sources, a slim final stage.
app="$WORK/app"
if [ ! -f "$app/Dockerfile" ]; then
  mkdir -p "$app/src"
  cat > "$app/Dockerfile" <<'DF'
FROM bench/debian:bookworm AS deps
WORKDIR /app
COPY deps.txt .
RUN for i in $(seq 1 2000); do d=node_modules/pkg$((i % 100)); [ -d $d ] || mkdir -p $d; echo "module.exports = '$i $(head -c 64 deps.txt)';" > $d/f$i.js; done
FROM deps AS build
COPY src/ src/
RUN cat src/*.js > bundle.js && wc -c bundle.js
FROM bench/busybox:1
COPY --from=build /app/bundle.js /srv/bundle.js
CMD ["cat", "/srv/bundle.js"]
DF
  printf 'left-pad@1.3.0\nlodash@4.17.21\nexpress@4.19.2\n' > "$app/deps.txt"
  for i in $(seq 1 50); do printf 'export function f%d(x) { return x + %d; }\n' "$i" "$i" > "$app/src/m$i.js"; done
fi

# 2. One RUN writing 400 MB in 4,000 files, half random, half text.
big="$WORK/bigrun"
if [ ! -f "$big/Dockerfile" ]; then
  mkdir -p "$big"
  cat > "$big/Dockerfile" <<'DF'
FROM bench/debian:bookworm
RUN mkdir /data && cd /data \
 && for i in $(seq 1 2000); do head -c 100000 /dev/urandom > r$i.bin; done \
 && for i in $(seq 1 2000); do yes "line $i of some text that compresses well" | head -c 100000 > t$i.txt; done
DF
fi

# 3. A 30,000-file, 120 MB context copied whole (300 dirs x 100 files x 4 KiB, text).
ctx="$WORK/ctx30k"
if [ ! -f "$ctx/Dockerfile" ]; then
  mkdir -p "$ctx/files"
  node -e '
    const fs = require("fs"), path = require("path");
    const root = process.argv[1];
    const line = "the quick brown fox jumps over the lazy dog 0123456789\n";
    for (let d = 0; d < 300; d++) {
      const dir = path.join(root, "files", "d" + d);
      fs.mkdirSync(dir, { recursive: true });
      for (let f = 0; f < 100; f++) {
        const head = `file ${d}/${f}\n`;
        fs.writeFileSync(path.join(dir, "f" + f + ".txt"), (head + line.repeat(80)).slice(0, 4096));
      }
    }' "$ctx"
  printf 'FROM bench/busybox:1\nCOPY . /ctx\n' > "$ctx/Dockerfile"
fi
log "workloads ready in $WORK"
