"""How wide printed text may be: the terminal's width, or 100 columns when output is not a terminal.

Long equations are folded at spaces (after ``+``, ``=``, ``·``, commas), each continuation
indented under its line, so no line of ``derive grad`` or ``derive show`` is wider than asked.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from typing import TextIO

DEFAULT_WIDTH = 100  # columns, when the output is not a terminal
MIN_WIDTH = 40
CONTINUATION = 4  # extra indentation of a folded line's continuations


def output_width(stream: TextIO | None = None) -> int:
    """The terminal's width when ``stream`` (standard output) is one, else DEFAULT_WIDTH."""
    stream = stream or sys.stdout
    try:
        if stream.isatty():
            return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    except (AttributeError, ValueError):  # a closed or replaced stream
        pass
    return DEFAULT_WIDTH


# where a line may break: after a comma, or before an operator standing between spaces
BREAK = re.compile(r"(?<=, )|(?= [-+=·→] )")
LIST_BREAK = re.compile(r"(?<=, )")  # a list of name = value pairs breaks between pairs only


def fold_line(line: str, width: int) -> list[str]:
    """``line`` as lines of at most ``width`` characters, continuations indented.

    Breaks come after commas and before `` + ``, `` - ``, `` = ``, `` · ``, `` → ``; a piece
    longer than a line is broken at any space (or, without one, anywhere).
    """
    if len(line) <= width:
        return [line]
    indent = line[: len(line) - len(line.lstrip(" "))]
    more = indent + " " * CONTINUATION
    if len(more) >= width // 2:
        more = " " * CONTINUATION
    lines: list[str] = []
    current = indent
    body = line.lstrip(" ")
    breaks = LIST_BREAK if body.count(", ") > body.count(" + ") + body.count(" - ") else BREAK
    for piece in breaks.split(body):
        if not piece:
            continue
        if len(current) + len(piece.rstrip()) <= width or not current.strip():
            current += piece if current.strip() else piece.lstrip()
            continue
        lines.append(current.rstrip())
        current = more + piece.lstrip()
    lines.append(current.rstrip())
    out: list[str] = []
    for folded in lines:  # a piece too long for a line on its own
        if len(folded) <= width:
            out.append(folded)
            continue
        start = folded[: len(folded) - len(folded.lstrip(" "))]
        out.extend(
            textwrap.wrap(
                folded.lstrip(" "),
                width,
                initial_indent=start,
                subsequent_indent=more,
                break_on_hyphens=False,
                break_long_words=True,
            )
        )
    return out


def fold(text: str, width: int | None) -> str:
    """Every line of ``text`` folded to ``width`` (None: left as it is)."""
    if width is None:
        return text
    lines = [part for line in text.split("\n") for part in fold_line(line, width)]
    return "\n".join(lines)


def natural_key(text: str) -> tuple[object, ...]:
    """x2 before x10: digit runs compared as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
