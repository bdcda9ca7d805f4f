"""How numbers are written: the one home of digits, powers of ten and brackets around negatives."""

from __future__ import annotations

import math
from typing import Any

DEFAULT_DIGITS = 8
FLOAT_DIGITS = 15  # significant digits a float64 holds for certain; more are written from a sympy Float's own


def format_number(value: Any, digits: int = DEFAULT_DIGITS) -> str:
    """``value`` to ``digits`` significant digits, as plain text (0.75136507).

    ``value`` may be a sympy Float: one beyond float64's range (e^2000) is written
    from its own digits.
    """
    if not isinstance(value, float | int):
        import mpmath
        import sympy as sp

        number = sp.Float(value)
        if number.is_zero:
            return "0"
        if digits > FLOAT_DIGITS and number._prec > 53:  # more digits than a float holds: from its own
            with mpmath.workprec(number._prec):
                text = mpmath.nstr(mpmath.mpf(number._mpf_), digits, min_fixed=-5, max_fixed=digits)
            text = text[:-2] if text.endswith(".0") else text
            return _exponent_form(text) if "e" in text else text
        as_float = float(number)
        if math.isinf(as_float) or abs(as_float) < 2.2250738585072014e-308:
            return _exponent_form(mpmath.nstr(mpmath.mpf(number._mpf_), digits, min_fixed=0, max_fixed=0))
        value = as_float
    if value == 0:
        return "0"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def _exponent_form(text: str) -> str:
    """mpmath's 1.5e+868 or 1.0e-400 as 1.5e868 or 1e-400."""
    mantissa, exponent = text.split("e")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    return f"{mantissa}e{int(exponent)}"


def distinct_digits(value: Any, digits: int = DEFAULT_DIGITS) -> int:
    """``digits``, or more where ``value`` would read as a whole number it is not (1 − 6.9e-13 is not 1:
    a factor out·(1 − out) must never read 1·(1 − 1)); at most float64's 17."""
    if not isinstance(value, float) or value == 0 or not math.isfinite(value) or abs(value) >= 10 ** (digits - 1):
        return digits  # a large number rounded to its digits reads as rounded, not as exact
    shown = float(format_number(value, digits))
    if shown != round(shown) or shown == value:
        return digits  # it does not read as a whole number, or it is one
    gap = abs(value - round(value))  # how far from the nearest whole number
    while digits < 17:
        digits += 1
        shown = float(format_number(value, digits))
        # stop when the number is exact, or reads as no whole number with its distance from one shown to 1 %
        if shown == value or (shown != round(shown) and abs(shown - value) <= 0.01 * gap):
            break
    return digits


def latex_number(value: Any, digits: int = DEFAULT_DIGITS) -> str:
    """``value`` as LaTeX: 3.5101878 \\times 10^{-5} instead of 3.5101878e-5; never a whole number it is not."""
    text = format_number(value, distinct_digits(value, digits))
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
