"""What `lightning-extremal report` costs per (image, target) pair as runs grow (#26 item 2):
bytes and files of the report beyond its first page, and time, per pair.

Builds runs of N synthetic pairs straight in the store's format (``tests/jobs/synthetic_run``:
chunk records, manifest, summary, overlays and GIFs; nothing optimised), writes each one's
report and prints a table. Time is wall time and the process's CPU time (``process_time``,
all threads): on a shared machine the CPU time is the one to compare.

  PYTHONPATH=. python benchmarks/report_scale.py [--pairs 200 1000 5000] [--size 224]
      [--steps 200] [--areas 0.05 0.2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from lightning_extremal.jobs.report.job import write_report
from tests.jobs.synthetic_run import build_run


def measure(run: Path) -> dict[str, float]:
    """Write the report of ``run`` and return its sizes and times."""
    wall, cpu = time.perf_counter(), time.process_time()
    first = write_report(run)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    folder = first.parent / f"{first.stem}_files"
    written = [p for p in folder.iterdir() if p.is_file()]
    pages = [p for p in first.parent.glob(f"{first.stem}-*{first.suffix}") if p.is_file()]
    beyond = written + pages
    return {
        "first_page": first.stat().st_size,
        "beyond_bytes": sum(p.stat().st_size for p in beyond),
        "beyond_files": len(beyond),
        "wall": wall,
        "cpu": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--size", type=int, default=224, help="image side, px")
    parser.add_argument("--steps", type=int, default=200, help="steps of each curve")
    parser.add_argument("--areas", type=float, nargs="+", default=[0.05, 0.2])
    parser.add_argument("--keep", type=Path, help="build the runs here and keep them")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="report_scale-"))
    print(
        f"{args.size}-px images, {len(args.areas)} areas, {args.steps} steps; "
        "bytes and files: everything of the report but its first page"
    )
    print("| pairs | first page KB | bytes/pair | files/pair | ms/pair (wall) | ms/pair (CPU) |")
    print("|---:|---:|---:|---:|---:|---:|")
    try:
        for pairs in args.pairs:
            run = root / f"run-{pairs}"
            if not (run / "summary.json").is_file():
                build_run(run, pairs, size=args.size, steps=args.steps, areas=tuple(args.areas))
            m = measure(run)
            print(
                f"| {pairs} | {m['first_page'] / 1000:.0f} | {m['beyond_bytes'] / pairs:.0f} | "
                f"{m['beyond_files'] / pairs:.3f} | {1000 * m['wall'] / pairs:.1f} | "
                f"{1000 * m['cpu'] / pairs:.1f} |",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
