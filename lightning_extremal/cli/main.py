"""Command line: ``lightning-extremal run|sweep|report|benchmark|analyze|list ...``.

A bad argument or a refused request (``ValueError``, :class:`~lightning_extremal.errors.UsageError`
among them, ``TypeError``, a missing file) is one line on stderr and exit status 2; ``--debug``
shows its traceback instead. Any other exception is a bug: its traceback, exit status 1.
"""

from __future__ import annotations

import logging
import os
import sys

from ..config import did_you_mean
from .analyze import analyze_command, analyze_help
from .commands import benchmark_command, report_command, run_command, sweep_command
from .help import USAGE, command_help
from .listing import list_command

COMMANDS = {
    "run": run_command,
    "sweep": sweep_command,
    "report": report_command,
    "benchmark": benchmark_command,
    "analyze": analyze_command,
    "list": list_command,
}

#: What the user can fix: printed as one line (exit 2) unless --debug. KeyError and
#: RuntimeError are left out on purpose: they come from bugs far more often than from input.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, IsADirectoryError)

HELP_FLAGS = ("-h", "--help")


def error_exit(message: str) -> int:
    """Print ``lightning-extremal: message`` as one line on stderr; the exit status 2."""
    line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"lightning-extremal: {line}", file=sys.stderr)
    return 2


def _dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in (*HELP_FLAGS, "help"):
        topic = argv[1] if len(argv) > 1 and argv[0] == "help" else None
        print(help_text(topic, argv[2:]) if topic in COMMANDS else USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        hint = did_you_mean(command, COMMANDS)
        return error_exit(
            f"unknown command {command!r}{hint} (commands: {', '.join(COMMANDS)}; --help for usage)"
        )
    if any(arg in HELP_FLAGS for arg in args):
        print(help_text(command, args))
        return 0
    return COMMANDS[command](args)


def help_text(command: str, args: list[str]) -> str:
    """The help of ``command`` (``analyze``: of the analysis named in ``args``, if any)."""
    return analyze_help(args) if command == "analyze" else command_help(command)


def show_package_log() -> None:
    """The package's log lines (e.g. which layer the warm start read) on stderr, prefixed
    like the other messages; once per process."""
    package = logging.getLogger("lightning_extremal")
    if not package.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lightning-extremal: %(message)s"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    show_package_log()
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        return _dispatch(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        return error_exit(str(error) or type(error).__name__)
    except BrokenPipeError:  # output piped into `head` & co., which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
