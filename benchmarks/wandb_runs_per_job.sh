#!/usr/bin/env bash
# What one offline W&B job writes: the 8 demo images in chunks of 2 (4 chunks), max_iter=5.
#   bash benchmarks/wandb_runs_per_job.sh [BATCH] [STEPS]     (~1 min quiet)
# Prints the number of W&B runs, the media keys (history keys with a W&B ._type), the size
# and file count of OUT/wandb, and the files written to $WANDB_DATA_DIR (outside the folder).
set -u
batch=${1:-2}
steps=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/staging"
WANDB_MODE=offline WANDB_DATA_DIR="$work/staging" "$here/.venv/bin/lightning-extremal" run \
  data=demo data.batch_size="$batch" max_iter="$steps" logger=wandb trainer.progress=false \
  output_dir="$work/out" >/dev/null 2>&1 || { echo "the run failed"; exit 1; }
runs=$(find "$work/out/wandb" -maxdepth 1 -name "offline-run-*" | wc -l)
keys=$("$here/.venv/bin/wandb" leet inspect --json "$work"/out/wandb/offline-run-* 2>/dev/null \
  | python3 -c '
import json, sys
keys = set()
for line in sys.stdin:
    record = json.loads(line)
    if record.get("type") == "history":
        item = record["history"]["item"]
        keys |= {k[: -len("._type")] for k in item if k.endswith("._type")}
print(len(keys), ",".join(sorted(keys)))')
echo "W&B runs: $runs"
echo "media keys: $keys"
echo "OUT/wandb: $(du -sk "$work/out/wandb" | cut -f1) KiB, $(find "$work/out/wandb" -type f | wc -l) files"
echo "outside the run folder (\$WANDB_DATA_DIR): $(find "$work/staging" -type f | wc -l) files"
