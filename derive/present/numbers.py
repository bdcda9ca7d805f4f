"""How numbers are written: the one home of digits, powers of ten and brackets around negatives."""

from __future__ import annotations

DEFAULT_DIGITS = 8


def format_number(value: float, digits: int = DEFAULT_DIGITS) -> str:
    """``value`` to ``digits`` significant digits, as plain text (0.75136507)."""
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def latex_number(value: float, digits: int = DEFAULT_DIGITS) -> str:
    """``value`` as LaTeX: 3.5101878 \\times 10^{-5} instead of 3.5101878e-5."""
    text = format_number(value, digits)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{exponent}}}"
    return text


def bracket(text: str, value: float | None) -> str:
    """A negative number inside a product or sum, in plain text: (−0.2)."""
    return f"({text})" if value is not None and value < 0 else text


def latex_bracket(text: str, value: float | None) -> str:
    """A negative number inside a product or sum, in LaTeX."""
    return rf"\left({text}\right)" if value is not None and value < 0 else text
