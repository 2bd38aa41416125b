#!/usr/bin/env bash
# Starts ctrd on a fresh temporary root, runs the Go-client conformance
# program against it, and stops ctrd (SIGTERM, by pid) however the run ends.
# The tasks section runs containers from a busybox OCI tarball built here
# with the project's tools/mkimage.py (no network needed).
# usage: run.sh CTRD_BINARY CONFORMANCE_BINARY [conformance flags...]
set -euo pipefail

ctrd=$1
conformance=$2
shift 2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkimage=$here/../../tools/mkimage.py

dir=$(mktemp -d "${TMPDIR:-/tmp}/ctrd-conformance.XXXXXX")
pid=

# Stops ctrd and reports its exit status; a clean SIGTERM shutdown exits 0.
stop_ctrd() {
  local rc=0
  [[ -n $pid ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: ctrd ($pid) still running 10s after SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || rc=$?
  pid=
  return "$rc"
}

cleanup() {
  stop_ctrd || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 "$mkimage" --busybox "$dir/busybox.tar"

"$ctrd" --root "$dir/root" --state "$dir/state" --address "$dir/ctrd.sock" --log-level info \
  >"$dir/ctrd.log" 2>&1 &
pid=$!

# Fail fast when ctrd dies at startup; the program itself then waits
# (bounded) for the socket to answer before its checks.
for _ in $(seq 300); do
  [[ -S $dir/ctrd.sock ]] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: ctrd exited at startup" >&2
    cat "$dir/ctrd.log" >&2
    exit 1
  fi
  sleep 0.1
done

status=0
"$conformance" -address "$dir/ctrd.sock" -dial-timeout 30s -image-tar "$dir/busybox.tar" "$@" || status=$?

if ! kill -0 "$pid" 2>/dev/null; then
  echo "run.sh: ctrd exited during the run" >&2
  status=1
fi
ctrd_rc=0
stop_ctrd || ctrd_rc=$?
if ((ctrd_rc != 0)); then
  echo "run.sh: ctrd exited with status $ctrd_rc on SIGTERM" >&2
  status=1
fi
if ((status != 0)); then
  echo "--- ctrd log ---" >&2
  cat "$dir/ctrd.log" >&2
fi
exit "$status"
