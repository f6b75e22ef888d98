#!/usr/bin/env bash
# Behaviour unchanged? Runs the same commands at REV (a git worktree) and in this working tree,
# one thread each, and compares what they wrote: masks, summaries, figures, benchmark tables.
#   bash benchmarks/same_outputs.sh 47ee1ec        (about 10 minutes on 2 cores)
# Prints one line per compared file: "same" or "DIFF". The Python is this tree's .venv; each
# tree's package is put first on PYTHONPATH.
set -u
rev=${1:?usage: same_outputs.sh REV}
here=$(cd "$(dirname "$0")/.." && pwd)
python=$here/.venv/bin/python
work=$(mktemp -d)
git -C "$here" worktree add -q "$work/old" "$rev"
trap 'git -C "$here" worktree remove --force "$work/old"; rm -rf "$work"' EXIT

run() {  # run TREE NAME ARGS...: one command of the CLI in TREE, output under $work/NAME
  local tree=$1 name=$2
  shift 2
  (cd "$tree" && PYTHONPATH=$tree OMP_NUM_THREADS=1 WANDB_MODE=offline \
    "$python" -m lightning_extremal "$@" output_dir="$work/$name" >"$work/$name.log" 2>&1) \
    || echo "FAILED $name (log: $work/$name.log)"
}

for side in old new; do
  tree=$here
  [ "$side" = old ] && tree=$work/old
  run "$tree" "$side-default" run logger=none trainer.progress=false
  run "$tree" "$side-channel" run logger=none trainer.progress=false method.kind=channel \
    method.max_iter=30
  run "$tree" "$side-invert" run logger=none trainer.progress=false method.kind=invert \
    inversion.invert_iter=20
  run "$tree" "$side-bench" benchmark task=pointing dataset=synthetic limit=6 \
    "methods=[grad_cam,extremal_perturbation,meaningful_perturbation]" max_iter=20 \
    "mp_options={max_iter: 20}" logger=none
  run "$tree" "$side-compare" analyze compare logger=none trainer.progress=false \
    method.max_iter=20 "analysis.mp_options={max_iter: 20}"
done

"$python" - "$work" <<'PY'
import json, sys
from pathlib import Path

import torch

work = Path(sys.argv[1])


def say(same: bool, what: str) -> None:
    print(("same " if same else "DIFF ") + what)


for name in ("default", "channel"):
    old = torch.load(work / f"old-{name}" / "masks.pt", weights_only=False)
    new = torch.load(work / f"new-{name}" / "masks.pt", weights_only=False)
    for key, value in old.items():
        equal = torch.equal(value, new[key]) if isinstance(value, torch.Tensor) else value == new[key]
        say(equal, f"{name}/masks.pt[{key}]")
for name in ("default", "channel", "invert"):
    old, new = work / f"old-{name}", work / f"new-{name}"
    results = [json.loads((d / "summary.json").read_text()).get("results") for d in (old, new)]
    say(results[0] == results[1], f"{name}/summary.json results")
    for png in sorted(p.relative_to(old) for p in old.rglob("*.png")):
        say((old / png).read_bytes() == (new / png).read_bytes(), f"{name}/{png}")
for file in ("pointing.csv", "pointing_per_class.csv"):
    rows = []
    for side in ("old", "new"):
        lines = (work / f"{side}-bench" / file).read_text().splitlines()
        header = lines[0].split(",")
        cut = header.index("seconds") if "seconds" in header else None
        rows.append([",".join(c for i, c in enumerate(l.split(",")) if i != cut) for l in lines])
    say(rows[0] == rows[1], f"bench/{file} (without the seconds column)")
say(
    (work / "old-compare" / "compare.csv").read_bytes()
    == (work / "new-compare" / "compare.csv").read_bytes(),
    "compare/compare.csv",
)
PY
