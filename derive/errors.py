"""The one exception type every user-facing problem is raised as."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DeriveError(Exception):
    """A problem the user can fix: bad spec, unknown parameter, missing numbers.

    ``where`` is a location such as ``spec.toml: layers[1].weights``; the CLI
    prints ``where: message`` and exits with status 2.
    """

    def __init__(self, message: str, where: str = "", hint: str = "") -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  {self.hint}"
        return text


class SpecError(DeriveError):
    """The spec file is unreadable or invalid."""


class FormulaError(DeriveError):
    """A formula in a spec is not one the safe parser accepts."""


class TooLargeError(DeriveError):
    """A request would build an expression too large to print or compile."""

    def __init__(self, message: str, where: str = "", hint: str = "", size: int = 0, limit: int = 0) -> None:
        super().__init__(message, where, hint)
        self.size = size
        self.limit = limit


def shorten(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (a 5000-digit name is not echoed whole)."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ``did you mean`` hint for a misspelled name, or an empty string."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return ""


def listing(choices: Iterable[str], limit: int = 40) -> str:
    """A short comma-separated listing of valid names."""
    options = list(choices)
    shown = ", ".join(options[:limit])
    if len(options) > limit:
        shown += f", … ({len(options) - limit} more)"
    return shown
