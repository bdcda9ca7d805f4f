"""LaTeX-safe strings: what derive's printers produce passes through; everything else is escaped.

A spec's free text (title, description) is untrusted: it is escaped character by
character, so ``\\input{/etc/passwd}`` prints those characters and runs nothing.
Names need no escaping beyond what :mod:`derive.naming` does: they are
identifiers by validation.
"""

from __future__ import annotations

import unicodedata

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "%": r"\%",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': r"\textquotedbl{}",
}


class Tex(str):
    """A string of LaTeX that derive produced itself; templates print it as is."""

    __slots__ = ()

    def __add__(self, other: str) -> Tex:
        return Tex(str.__add__(self, other if isinstance(other, Tex) else escape(other)))


def escape(text: str, unicode_ok: bool = True) -> Tex:
    """Escape free text for LaTeX.

    With ``unicode_ok`` False (pdflatex), characters beyond Latin-1 become ``?``:
    pdflatex has no glyphs for them, and a build failure is never an acceptable
    outcome of user text.
    """
    out = []
    for ch in text:
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch == "\n":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue  # control and format characters
        elif not unicode_ok and ord(ch) > 0xFF:
            out.append("?")
        else:
            out.append(ch)
    return Tex("".join(out))


def tex(value: object) -> Tex:
    """Mark derive's own LaTeX as safe."""
    return Tex(str(value))
