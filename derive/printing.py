"""Printers: one expression tree, shown as text or LaTeX, with symbols or with numbers.

Subclasses of sympy's printers (``_print_<Class>`` dispatch): symbol names come
from the network's LaTeX table, and the "numbers substituted" view prints each
symbol as its value, bracketed when negative, without touching the tree.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

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


class TextPrinter(StrPrinter):
    """Plain text with the spec's names."""


class TextValuePrinter(StrPrinter):
    """Plain text with every symbol replaced by its value."""

    def __init__(self, values: Mapping[sp.Symbol, float], digits: int = DEFAULT_DIGITS) -> None:
        super().__init__({})
        self.values = values
        self.digits = digits

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        if expr not in self.values:
            return expr.name
        value = self.values[expr]
        text = format_number(value, self.digits)
        return f"({text})" if value < 0 else text


class NamedLatexPrinter(LatexPrinter):
    """LaTeX with the network's spelling of every symbol."""

    def __init__(self, names: Mapping[sp.Symbol, str], **settings: object) -> None:
        super().__init__({"mul_symbol": None, **settings})
        self.names = names

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return self.names.get(expr) or super()._print_Symbol(expr, style)


class ValueLatexPrinter(LatexPrinter):
    """LaTeX with every symbol replaced by its value; products get an explicit ·."""

    def __init__(
        self,
        values: Mapping[sp.Symbol, float],
        names: Mapping[sp.Symbol, str],
        digits: int = DEFAULT_DIGITS,
    ) -> None:
        super().__init__({"mul_symbol": "dot"})
        self.values = values
        self.names = names
        self.digits = digits

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr not in self.values:
            return self.names.get(expr) or super()._print_Symbol(expr, style)
        value = self.values[expr]
        text = latex_number(value, self.digits)
        return rf"\left({text}\right)" if value < 0 else text


def text(expr: sp.Basic) -> str:
    return str(TextPrinter().doprint(expr))


def text_values(expr: sp.Basic, values: Mapping[sp.Symbol, float], digits: int = DEFAULT_DIGITS) -> str:
    return str(TextValuePrinter(values, digits).doprint(expr))


def latex(expr: sp.Basic, names: Mapping[sp.Symbol, str]) -> str:
    return str(NamedLatexPrinter(names).doprint(expr))


def latex_values(
    expr: sp.Basic, values: Mapping[sp.Symbol, float], names: Mapping[sp.Symbol, str], digits: int = DEFAULT_DIGITS
) -> str:
    return str(ValueLatexPrinter(values, names, digits).doprint(expr))


def partial_text(of: sp.Symbol, wrt: sp.Symbol) -> str:
    """∂of/∂wrt in plain text."""
    return f"∂{of.name}/∂{wrt.name}"


def partial_latex(of: sp.Symbol, wrt: sp.Symbol, names: Mapping[sp.Symbol, str]) -> str:
    return rf"\frac{{\partial {names.get(of, of.name)}}}{{\partial {names.get(wrt, wrt.name)}}}"
