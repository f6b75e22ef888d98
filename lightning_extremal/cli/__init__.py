"""The command line (``lightning-extremal``)."""

from .main import main

__all__ = ["main"]
