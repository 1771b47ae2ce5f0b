#!/usr/bin/env bash
# Runs one libFuzzer target: first every committed seed (regressions), then SECONDS of fuzzing
# from the seeds, writing new inputs to SCRATCH (never into the committed corpus). Crashes are
# written to SCRATCH/crash-* and fail the run.
#   scripts/fuzz-run.sh TARGET_BINARY CORPUS_DIR SCRATCH_DIR SECONDS
set -euo pipefail
bin=$1 corpus=$2 scratch=$3 seconds=$4
mkdir -p "$scratch/new"
rm -f "$scratch"/crash-* "$scratch"/leak-* "$scratch"/oom-* "$scratch"/timeout-*  # from earlier runs
# Seeds alone: -runs=0 executes each input once.
"$bin" -runs=0 -rss_limit_mb=2048 -timeout=10 "$corpus" 2>&1 | tail -n 3
if [ "$seconds" -gt 0 ]; then
  "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="$scratch/" -print_final_stats=1 "$scratch/new" "$corpus" 2>&1 |
    grep -E "^(#[0-9]+[[:space:]]*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" || true
  shopt -s nullglob
  found=("$scratch"/crash-* "$scratch"/leak-* "$scratch"/oom-* "$scratch"/timeout-*)
  if [ ${#found[@]} -gt 0 ]; then
    echo "fuzz: $(basename "$bin") found a failing input in $scratch" >&2
    exit 1
  fi
fi
