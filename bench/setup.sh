#!/usr/bin/env bash
# Installs and starts the peers when missing, builds tsbuild, makes the base images (busybox from
# Debian's busybox-static, Debian bookworm minbase via debootstrap) and loads them into all three
# tools under the same names, then generates the workloads. Idempotent; safe to re-run.
source "$(dirname "$0")/lib.sh"

need=()
for p in docker.io:/usr/bin/docker buildah:/usr/bin/buildah runc:/usr/sbin/runc hyperfine:/usr/bin/hyperfine \
         debootstrap:/usr/sbin/debootstrap docker-registry:/usr/bin/docker-registry busybox-static:/bin/busybox \
         skopeo:/usr/bin/skopeo curl:/usr/bin/curl time:/usr/bin/time; do
  [ -e "${p#*:}" ] || need+=("${p%%:*}")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

[ -f "$ROOT_DIR/dist/src/cli/main.js" ] || (cd "$ROOT_DIR" && npm run build >/dev/null)
start_dockerd

# busybox: built by tsbuild itself, then handed to the peers as a docker-archive.
if ! "$TSBUILD" images | grep -q '^bench/busybox '; then
  log "building bench/busybox:1 with tsbuild"
  ctx="$(mktemp -d)"; cp "$ROOT_DIR/fixtures/busybox/Dockerfile" "$ctx/"; cp /bin/busybox "$ctx/"
  "$TSBUILD" build -q -t bench/busybox:1 "$ctx" >/dev/null; rm -rf "$ctx"
fi
# debian: a debootstrap minbase rootfs imported by docker, handed to tsbuild and buildah.
if ! $DOCKER image inspect bench/debian:bookworm >/dev/null 2>&1; then
  if [ ! -f "$WORK/debian-rootfs.tar" ]; then
    log "debootstrap bookworm minbase (about 30 s)"
    rm -rf "$WORK/debian-rootfs"
    debootstrap --variant=minbase bookworm "$WORK/debian-rootfs" >/dev/null
    rm -rf "$WORK/debian-rootfs"/var/cache/apt/archives/*.deb
    tar -C "$WORK/debian-rootfs" --numeric-owner -cf "$WORK/debian-rootfs.tar" .
    rm -rf "$WORK/debian-rootfs"
  fi
  $DOCKER import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$WORK/debian-rootfs.tar" bench/debian:bookworm >/dev/null
fi
if ! $DOCKER image inspect bench/busybox:1 >/dev/null 2>&1; then
  "$TSBUILD" save --format docker -o "$WORK/busybox.docker.tar" bench/busybox:1
  $DOCKER load -i "$WORK/busybox.docker.tar" >/dev/null
fi
if ! "$TSBUILD" images | grep -q '^bench/debian '; then
  $DOCKER save -o "$WORK/debian.docker.tar" bench/debian:bookworm
  "$TSBUILD" load -i "$WORK/debian.docker.tar" >/dev/null
fi
for img in bench/busybox:1 bench/debian:bookworm; do
  if ! buildah inspect --type image "docker.io/$img" >/dev/null 2>&1; then
    [ -f "$WORK/$(basename "${img%%:*}").docker.tar" ] || $DOCKER save -o "$WORK/$(basename "${img%%:*}").docker.tar" "$img"
    buildah pull -q "docker-archive:$WORK/$(basename "${img%%:*}").docker.tar" >/dev/null
    buildah tag "$(buildah images -q --filter reference="$img" | head -1 || true)" "docker.io/$img" 2>/dev/null || true
  fi
done
bash "$BENCH_DIR/workloads.sh"
log "setup done"
