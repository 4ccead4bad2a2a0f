#!/usr/bin/env bash
# Installs the real services and tools the test suite drives (registry, skopeo, umoci, TLS tools,
# buildah + runc for the differential tests, bzip2/xz for ADD archive decompression, libdeflate,
# getfattr/setfattr as the reference for our xattr calls).
# Idempotent: only missing commands are installed, and `apt-get update` runs only when needed.
set -euo pipefail

# command -> Debian package
declare -A PKG=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [umoci]=umoci
  [openssl]=openssl
  [htpasswd]=apache2-utils
  [busybox]=busybox-static
  [newuidmap]=uidmap
  [tmux]=tmux
  [buildah]=buildah
  [runc]=runc
  [bzip2]=bzip2
  [xz]=xz-utils
  [getfattr]=attr
  [git]=git
)

# shared library -> Debian package: dlopen()ed at run time (libdeflate: fast gzip), so no command
# to look for, only the file.
declare -A LIB=(
  [libdeflate.so.0]=libdeflate0
)
has_lib() { ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 " || compgen -G "/usr/lib/*/$1" >/dev/null; }

missing=()
for cmd in "${!PKG[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    missing+=("${PKG[$cmd]}")
  fi
done
for lib in "${!LIB[@]}"; do
  if ! has_lib "$lib"; then
    missing+=("${LIB[$lib]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-test-deps: all test dependencies present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing packages (${missing[*]}) and apt-get is not available" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-test-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-test-deps: installing ${missing[*]}"
if ! $SUDO apt-get update -q; then
  echo "install-test-deps: apt-get update failed" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
  echo "install-test-deps: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi

for cmd in "${!PKG[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "install-test-deps: '$cmd' still missing after install (package ${PKG[$cmd]})" >&2
    exit 1
  fi
done
for lib in "${!LIB[@]}"; do
  if ! has_lib "$lib"; then
    echo "install-test-deps: '$lib' still missing after install (package ${LIB[$lib]})" >&2
    exit 1
  fi
done
echo "install-test-deps: done"
