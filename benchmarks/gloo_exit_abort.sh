#!/usr/bin/env bash
# Does a torchrun rank abort at exit when it still holds its gloo process group?
# (pytorch#190489; why run_job closes its group: engine/distributed.close_process_group)
#   bash benchmarks/gloo_exit_abort.sh [RUNS]      (about 6 s a run on 2 cores)
# Prints, for a two-rank script that does 20 all_reduce + all_gather_object and exits with
# ("destroy") and without ("keep") destroy_process_group, how many runs printed
# "terminate called without an active exception".
set -u
runs=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/ranks.py" <<'PY'
import sys

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
for _ in range(20):
    dist.all_reduce(torch.rand(1000))
    dist.all_gather_object([None] * dist.get_world_size(), {"x": torch.rand(10)})
if sys.argv[1] == "destroy":
    dist.destroy_process_group()
PY
for mode in keep destroy; do
  aborted=0
  for _ in $(seq "$runs"); do
    out=$(OMP_NUM_THREADS=1 "$here/.venv/bin/torchrun" --standalone --nproc-per-node=2 \
      "$work/ranks.py" "$mode" 2>&1)
    grep -q "terminate called" <<<"$out" && aborted=$((aborted + 1))
  done
  echo "$mode: $aborted of $runs runs aborted at exit"
done
