#!/usr/bin/env bash
# README command 1: a real, offline build. Makes a busybox base image from Debian's busybox-static
# with tsbuild itself (FROM scratch), then builds the two-stage examples/hello on top of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
export TSBUILD_ROOT="${TSBUILD_ROOT:-$PWD/.demo-store}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp fixtures/busybox/Dockerfile "$ctx/Dockerfile"
cp /bin/busybox "$ctx/busybox"
./bin/tsbuild build --progress plain -t busybox:local "$ctx"
./bin/tsbuild build --progress plain -t hello:v1 examples/hello
./bin/tsbuild images
./bin/tsbuild history hello:v1
./bin/tsbuild save -o "$ctx/hello.oci.tar" hello:v1
echo "OCI archive written and checked by skopeo:"
skopeo inspect --raw "oci-archive:$ctx/hello.oci.tar" | head -c 400; echo
