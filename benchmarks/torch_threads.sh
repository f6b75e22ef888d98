#!/usr/bin/env bash
# Torch threads on a CPU: the quick preset on the demo images with OMP_NUM_THREADS=1 and 2,
# alternating, REPS times each (order effects cancel on a loaded machine).
#   bash benchmarks/torch_threads.sh [REPS]     (default 2; ~20-30 s a run on 2 quiet cores)
# Prints wall, user and system seconds per run; compare the machine's load (uptime) too.
set -u
reps=${1:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
uptime
for rep in $(seq "$reps"); do
  for threads in 1 2; do
    /usr/bin/time -f "threads=$threads rep=$rep wall %e s, user %U s, sys %S s" \
      env OMP_NUM_THREADS="$threads" "$here/.venv/bin/lightning-extremal" run preset=quick \
      logger=none trainer.progress=false output_dir="$work/t$threads-$rep" 2>&1 | grep "^threads="
  done
done
