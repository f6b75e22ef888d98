"""Pair-level view of pointing-benchmark runs: hits per subset, and a paired sign test.

Reads the per-pair records that ``lightning-extremal benchmark pointing`` keeps in
``OUT/chunks/<method>/chunk-*.pt`` and prints, for every ``NAME=OUT:METHOD`` given, its hits on
the single-object images, the multi-object images (ids ``multi-…``) and all pairs; then, for
the first run against each other one, the pairs only one of them hits and the two-sided sign
test's p-value on those (do the two methods differ beyond chance on these pairs?).

  python benchmarks/pointing_pairs.py Grad-CAM=/work/evb_synth:grad_cam \\
      EP=/work/evb_fast:extremal_perturbation
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def load_records(out: str, method: str) -> dict[tuple[str, int], dict]:
    """``(image id, class) → record`` of one method's finished chunks in ``out``."""
    records = {}
    for path in sorted((Path(out) / "chunks" / method).glob("chunk-*.pt")):
        for record in torch.load(path, weights_only=False)["records"]:
            records[(record["image_id"], record["class"])] = record
    if not records:
        raise SystemExit(f"no records for method {method!r} under {out}/chunks/")
    return records


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial p-value of ``wins`` vs ``losses`` under p = ½."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=OUTPUT_DIR:METHOD")
    args = parser.parse_args()
    runs = []
    for spec in args.runs:
        name, _, rest = spec.partition("=")
        out, _, method = rest.rpartition(":")
        runs.append((name, load_records(out, method)))
    print("| method | single-object | multi-object | all |")
    print("|---|---|---|---|")
    for name, records in runs:
        cells = []
        for keep in (lambda k: not k.startswith("multi"), lambda k: k.startswith("multi"), bool):
            hits = [r["hit"] for (image, _), r in records.items() if keep(image)]
            cells.append(f"{sum(hits)}/{len(hits)}")
        print(f"| {name} | {' | '.join(cells)} |")
    base_name, base = runs[0]
    if len(runs) > 1:
        print(
            f"\n| vs {base_name} | common pairs | only {base_name} hits | only it hits | sign test p |"
        )
        print("|---|---|---|---|---|")
    for name, records in runs[1:]:
        common = [key for key in base if key in records]
        only_base = sum(base[k]["hit"] and not records[k]["hit"] for k in common)
        only_other = sum(records[k]["hit"] and not base[k]["hit"] for k in common)
        p = sign_test(only_base, only_other)
        print(f"| {name} | {len(common)} | {only_base} | {only_other} | {p:.2f} |")


if __name__ == "__main__":
    main()
