"""The exceptions that mean "the user can fix this": the command line prints their message on
one line and exits 2 (no traceback unless ``--debug``)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input or a refused request (a locked or foreign output folder, a model that cannot
    be explained); the message names the bad value and what to do instead."""
