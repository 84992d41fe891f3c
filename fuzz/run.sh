#!/usr/bin/env bash
# Runs every built fuzz target for a few seconds on its seed corpus.
# usage: fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
build=$1 secs=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
status=0 ran=0
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  seeds="$here/seeds/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/
  echo "fuzz: $name for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=0 "$work" >"$work.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -40 "$work.log"; status=1
  fi
  ran=$((ran + 1))
  rm -rf "$work" "$work.log"
done
[ "$ran" -gt 0 ] || { echo "fuzz: no targets in $build/fuzz"; exit 1; }
echo "fuzz: $ran targets, $([ $status = 0 ] && echo 'no failures' || echo 'FAILURES')"
exit $status
