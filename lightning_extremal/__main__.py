"""``python -m lightning_extremal`` (and ``torchrun … -m lightning_extremal``): the CLI."""

from .cli import main

raise SystemExit(main())
