#!/usr/bin/env bash
# How many demo masks a run calls converged (ops/convergence: area within max(0.2·a, one
# parameter's share) and reward stalled over the last 10 % of steps), by schedule.
#   bash benchmarks/converged_counts.sh [STEPS ...]     (default: 3 50 100 200; ~2 min quiet)
# Each row: the demo images, logger and progress off, areas 0.1 and 0.2 (the quick preset's),
# max_iter=STEPS; prints the run's own "masks converged" count and its wall time. The default
# 200-step run (one area, 0.1) is printed last.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/.venv/bin/lightning-extremal"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count() {  # label, then run arguments
  local label=$1; shift
  local start=$SECONDS
  local line
  line=$("$bin" run logger=none trainer.progress=false output_dir="$work/$RANDOM$RANDOM" "$@" 2>&1 \
    | grep -o "masks converged: [0-9]*/[0-9]*")
  echo "| $label | ${line#masks converged: } | $((SECONDS - start)) s |"
}
echo "| run | converged | wall |"
echo "|---|---|---|"
for steps in "${@:-3 50 100 200}"; do
  for n in $steps; do count "preset=quick max_iter=$n" preset=quick max_iter="$n"; done
done
count "default (200 steps, area 0.1)"
