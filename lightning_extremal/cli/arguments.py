"""Options of the subcommands (``--count N``, ``--cfg``, …) taken out of their arguments; the
rest are ``key=value`` items and positional names."""

from __future__ import annotations

from ..config import did_you_mean
from ..errors import UsageError

#: Options every subcommand takes (read by :func:`~.main.main`).
COMMON_OPTIONS = ("--debug", "-h", "--help")


def take_option(args: list[str], name: str) -> tuple[str | None, list[str]]:
    """Take ``--name VALUE`` or ``--name=VALUE`` out of ``args``: (VALUE or None, the rest)."""
    rest, value = [], None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == name:
            if i + 1 >= len(args):
                raise UsageError(f"{name} needs a value")
            value, i = args[i + 1], i + 2
            continue
        if arg.startswith(name + "="):
            value = arg.partition("=")[2]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def take_flag(args: list[str], name: str) -> tuple[bool, list[str]]:
    """Take the flag ``name`` out of ``args``: (whether it was there, the rest)."""
    return name in args, [a for a in args if a != name]


def refuse_unknown_options(args: list[str], command: str, known: tuple[str, ...]) -> None:
    """A ``UsageError`` for the first ``-x``/``--xyz`` left in ``args`` (after the command's
    options were taken out), with the closest known option."""
    for arg in args:
        if arg.startswith("-") and "=" not in arg and not _is_number(arg):
            options = [*known, *COMMON_OPTIONS]
            hint = did_you_mean(arg, options)
            raise UsageError(
                f"{command}: unknown option {arg!r}{hint} (options: {', '.join(options)})"
            )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
