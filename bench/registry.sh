#!/usr/bin/env bash
# bench/registry.sh restart|stop — a fresh, empty local registry for the push/pull workloads.
source "$(dirname "$0")/lib.sh"
case "${1:-restart}" in restart) restart_registry ;; stop) stop_registry ;; esac
