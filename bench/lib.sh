# Shared settings and helpers for the bench scripts (sourced, not run).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$BENCH_DIR/.." && pwd)"
WORK="${BENCH_WORK:-$BENCH_DIR/.work}"
export TSBUILD_ROOT="$WORK/tsbuild-store"
TSBUILD="$ROOT_DIR/bin/tsbuild"
DOCKER=/usr/bin/docker
BUILDAH="buildah --runtime /usr/sbin/runc"
REGISTRY_PORT="${BENCH_REGISTRY_PORT:-5391}"
REGISTRY="127.0.0.1:$REGISTRY_PORT"
mkdir -p "$WORK"

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

# dockerd with BuildKit, no iptables and no bridge (this machine has neither).
start_dockerd() {
  if $DOCKER info >/dev/null 2>&1; then return; fi
  mkdir -p /etc/docker
  if [ ! -f /etc/docker/daemon.json ]; then echo '{"iptables": false, "bridge": "none"}' > /etc/docker/daemon.json; fi
  log "starting dockerd"
  nohup /usr/sbin/dockerd >"$WORK/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do $DOCKER info >/dev/null 2>&1 && return; sleep 0.5; done
  echo "dockerd did not start; see $WORK/dockerd.log" >&2; exit 1
}

# A fresh, empty Distribution registry on $REGISTRY (storage wiped each call).
restart_registry() {
  stop_registry
  rm -rf "$WORK/registry" && mkdir -p "$WORK/registry/data"
  cat > "$WORK/registry/config.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry/data}, delete: {enabled: true}}
http: {addr: $REGISTRY}
YML
  nohup docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
  echo $! > "$WORK/registry/pid"
  for _ in $(seq 1 50); do curl -sf "http://$REGISTRY/v2/" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "registry did not start" >&2; exit 1
}

stop_registry() {
  if [ -f "$WORK/registry/pid" ]; then kill "$(cat "$WORK/registry/pid")" 2>/dev/null || true; sleep 0.2; rm -f "$WORK/registry/pid"; fi
}
