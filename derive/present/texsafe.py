"""LaTeX-safe strings: what derive's printers produce passes through; everything else is escaped.

A spec's free text (title, description) is untrusted: it is escaped character by
character, so ``\\input{/etc/passwd}`` prints those characters and runs nothing.
Names need no escaping beyond what :mod:`derive.spec.naming` does: they are
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


# typographic characters beyond Latin-1 that pdflatex can still set (text mode, standard packages)
_PDFLATEX = {
    "\u2018": "`",
    "\u2019": "'",
    "\u201c": "``",
    "\u201d": "''",
    "\u201a": ",",
    "\u201e": ",,",
    "\u2013": "--",
    "\u2014": "---",
    "\u2212": r"\ensuremath{-}",
    "\u2026": r"\ldots{}",
    "\u2022": r"\textbullet{}",
    "\u20ac": r"\texteuro{}",
    "\u2032": r"\ensuremath{'}",
    "\u2033": r"\ensuremath{''}",
    "\u2264": r"\ensuremath{\le}",
    "\u2265": r"\ensuremath{\ge}",
    "\u2260": r"\ensuremath{\ne}",
    "\u2248": r"\ensuremath{\approx}",
    "\u2192": r"\ensuremath{\to}",
    "\u2202": r"\ensuremath{\partial}",
    "\u221e": r"\ensuremath{\infty}",
    "\u2211": r"\ensuremath{\sum}",
    "\u00a0": "~",
}
# Greek letters by their Unicode names; capitals that look Latin are those Latin letters
_GREEK_COMMANDS = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lamda", "mu", "nu", "xi",
    "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
}  # fmt: skip
_GREEK_CAPITALS = {"gamma", "delta", "theta", "lamda", "xi", "pi", "sigma", "upsilon", "phi", "psi", "omega"}
_GREEK_LATIN = {"alpha": "A", "beta": "B", "epsilon": "E", "zeta": "Z", "eta": "H", "iota": "I", "kappa": "K",
                "mu": "M", "nu": "N", "omicron": "O", "rho": "P", "tau": "T", "chi": "X"}  # fmt: skip


def _pdflatex_form(ch: str) -> str | None:
    """A pdflatex spelling of a character beyond Latin-1, or None."""
    if ch in _PDFLATEX:
        return _PDFLATEX[ch]
    name = unicodedata.name(ch, "")
    for prefix, capital in (("GREEK SMALL LETTER ", False), ("GREEK CAPITAL LETTER ", True)):
        if name.startswith(prefix):
            letter = name[len(prefix) :].lower()
            if letter == "final sigma":
                letter = "sigma"
            command = "lambda" if letter == "lamda" else letter
            if capital and letter in _GREEK_CAPITALS:
                return rf"\ensuremath{{\{command.capitalize()}}}"
            if capital and letter in _GREEK_LATIN:
                return _GREEK_LATIN[letter]
            if not capital and letter in _GREEK_COMMANDS:
                return rf"\ensuremath{{\{command}}}"
            if not capital and letter == "omicron":
                return "o"
    return None


class Tex(str):
    """A string of LaTeX that derive produced itself; templates print it as is."""

    __slots__ = ()

    def __add__(self, other: str) -> Tex:
        return Tex(str.__add__(self, other if isinstance(other, Tex) else escape(other)))


def escape(text: str, unicode_ok: bool = True) -> Tex:
    """Escape free text for LaTeX.

    With ``unicode_ok`` False (pdflatex), characters beyond Latin-1 take their LaTeX
    spelling where pdflatex has one (curly quotes, dashes, Greek letters, ≤, €, …)
    and become ``?`` otherwise: pdflatex has no glyphs for them, and a build failure
    is never an acceptable outcome of user text.
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
            out.append(_pdflatex_form(ch) or "?")
        else:
            out.append(ch)
    return Tex("".join(out))


def tex(value: object) -> Tex:
    """Mark derive's own LaTeX as safe."""
    return Tex(str(value))
