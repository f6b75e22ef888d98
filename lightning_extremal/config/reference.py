"""Each config field's default and the comment beside it in ``schema.py``: what ``--help``
lists, read from the dataclasses themselves so that the help cannot drift from the code."""

from __future__ import annotations

import inspect
import io
import json
import tokenize
from dataclasses import MISSING, Field, fields
from typing import Any

#: A comment line of this form heads a section of fields; it describes none of them.
SECTION_MARK = "---"


def field_default(field: Field) -> Any:
    """The default value of a dataclass field (its factory's value when it has one)."""
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:
        return field.default_factory()
    return None


def format_value(value: Any) -> str:
    """A value as it is written on the command line (``null``, ``true``, ``[0.1]``, ``demo``)."""
    if isinstance(value, str):
        return value
    if hasattr(value, "__dataclass_fields__"):
        return type(value).__name__
    return json.dumps(value)


def _source_lines(cls: type) -> list[tuple[int, str, str]]:
    """(line number, code without comment, comment) for every line of ``cls``'s source."""
    source = inspect.getsource(cls)
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    rows = []
    for number, line in enumerate(source.splitlines(), start=1):
        comment = comments.get(number, "")
        code = line.split("#", 1)[0].strip() if number in comments else line.strip()
        rows.append((number, code, comment))
    return rows


def _unclosed(text: str) -> bool:
    return text.count("(") > text.count(")")


def field_comments(cls: type) -> dict[str, str]:
    """The comment of each field of the dataclass ``cls``: the one on its line, or the block
    of comment lines just above it when its line has none. A block above a field that has
    its own comment continues the previous field's comment when that one left a parenthesis
    open, and is a section heading otherwise (ignored)."""
    names = {f.name for f in fields(cls)}
    result: dict[str, str] = {}
    block: list[str] = []
    previous: str | None = None
    for _, code, comment in _source_lines(cls):
        name = code.split(":", 1)[0].strip() if ":" in code else None
        if name in names:
            if comment:
                if block and previous and _unclosed(result.get(previous, "")):
                    result[previous] += " " + " ".join(block)
                result[name] = comment
            else:
                result[name] = " ".join(block)
            block, previous = [], name
        elif not code and comment and not comment.startswith(SECTION_MARK):
            block.append(comment)
        elif code:
            block = []
    return result


def describe_fields(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, comment) of every field of the dataclass ``cls``, keys as ``prefix`` +
    field name, defaults as written on the command line."""
    comments = field_comments(cls)
    return [
        (prefix + f.name, format_value(field_default(f)), comments.get(f.name, ""))
        for f in fields(cls)
    ]
