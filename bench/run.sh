#!/usr/bin/env bash
# Runs every benchmark against Debian's containerd; figures go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
"$BUILD/bench/bench_startup" --rounds "${ROUNDS:-10}"
if [ -x "$BUILD/bench/bench_content_write" ]; then
  "$BUILD/bench/bench_content_write" --rounds "${WRITE_ROUNDS:-3}"
fi
if [ -x "$BUILD/bench/bench_images" ]; then
  "$BUILD/bench/bench_images" --rounds "${IMAGE_ROUNDS:-3}"
  # The same import with both daemons' roots on tmpfs: what the daemons
  # themselves cost, without the disk filesystem's inode allocation (which
  # dominates both on this VM's ext4 without a journal).
  echo "import with roots on tmpfs:"
  TMPDIR=/dev/shm "$BUILD/bench/bench_images" --rounds "${IMAGE_ROUNDS:-3}" --what import
  echo "API under load, with ctrd's metrics endpoint on (and histograms) as a third daemon:"
  "$BUILD/bench/bench_images" --rounds "${IMAGE_ROUNDS:-3}" --what list --metrics on
fi
if [ -x "$BUILD/bench/bench_tasks" ]; then
  "$BUILD/bench/bench_tasks" --rounds "${TASK_ROUNDS:-3}"
fi
if [ -x "$BUILD/bench/bench_cri" ]; then
  "$BUILD/bench/bench_cri" --rounds "${CRI_ROUNDS:-3}"
fi
