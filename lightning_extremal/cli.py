"""Command line: ``lightning-extremal run [config=NAME|PATH] [key=value ...]``."""

from __future__ import annotations

import sys

USAGE = """usage: lightning-extremal run [config=NAME|PATH] [GROUP=NAME] [key=value ...]

Explain images with a classifier by extremal perturbations; writes masks.pt, overlays/*.png
and summary.json under the output directory it prints.

  lightning-extremal run                              # demo images, demo classifier
  lightning-extremal run areas=[0.05,0.1,0.2] max_iter=300
  lightning-extremal run model=resnet50 data=photos/ data.targets=top1
  lightning-extremal run preset=fast logger=csv

Keys: any field of the config dataclasses as group.field (e.g. method.sigma=15) or, when
unique, the bare field (sigma=15). GROUP=NAME merges configs/GROUP/NAME.yaml; model=, data=
and logger= also take a model name, an image folder/glob and a logger name.
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command != "run":
        print(f"unknown command {command!r}; available: run\n\n{USAGE}", file=sys.stderr)
        return 2
    from .config import compose
    from .run import run_job

    try:
        cfg = compose(args)
    except ValueError as error:
        print(f"lightning-extremal: {error}", file=sys.stderr)
        return 2
    run_job(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
