"""Printers: one expression tree, shown as text or LaTeX, with symbols or with numbers.

Subclasses of sympy's printers (``_print_<Class>`` dispatch): symbol names come
from the network's LaTeX table, and the "numbers substituted" view prints each
symbol as its value, bracketed when negative, without touching the tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

# number formatting lives in derive.present.numbers; re-exported for the printers and their callers
from .numbers import DEFAULT_DIGITS, format_number, latex_number
from .width import natural_key


class _NumericOrder(StrPrinter):
    """Terms of a sum in numeric order of their names (x1, x2, …, x10), not sympy's string order (x1, x10, x2).

    Only terms with coefficient ±1 move, each among those of its sign, so constants and signs keep
    sympy's places; the key is the term's name text, so the value printer keeps the same order.
    """

    def _as_ordered_terms(self, expr: sp.Basic, order: str | None = None) -> list[sp.Basic]:
        terms = list(super()._as_ordered_terms(expr, order=order))
        for negative in (False, True):
            places = [
                i
                for i, term in enumerate(terms)
                if term.could_extract_minus_sign() == negative and abs(term.as_coeff_Mul()[0]) == 1
            ]
            moved = sorted((terms[i] for i in places), key=lambda term: natural_key(sp.sstr(term)))
            for i, term in zip(places, moved):
                terms[i] = term
        return terms


class TextPrinter(_NumericOrder):
    """Plain text with the spec's names."""


class TextValuePrinter(_NumericOrder):
    """Plain text with every symbol replaced by its value."""

    def __init__(self, values: Mapping[sp.Symbol, float], digits: int = DEFAULT_DIGITS) -> None:
        super().__init__({})
        self.values = values
        self.digits = digits

    bare = False  # True while printing the lone argument of a function: its brackets suffice

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        if expr not in self.values:
            return expr.name
        value = self.values[expr]
        text = format_number(value, self.digits)
        if text in ("1", "-1") and value != int(text):
            # a saturated out, ±1 to the digits shown but not exactly: 1 - 2.0611536e-9, so 1 - out never reads 1 - 1
            gap = value - int(text)
            sign = "-" if gap < 0 else "+"
            text = f"{text} {sign} {format_number(abs(gap), self.digits)}"
            return text if self.bare else f"({text})"
        return f"({text})" if value < 0 and not self.bare else text

    def _print_Function(self, expr: sp.Function) -> str:
        self.bare = len(expr.args) == 1 and isinstance(expr.args[0], sp.Symbol)
        try:
            return str(super()._print_Function(expr))
        finally:
            self.bare = False


class NamedLatexPrinter(LatexPrinter):
    """LaTeX with the network's spelling of every symbol."""

    def __init__(self, names: Mapping[sp.Symbol, str], **settings: object) -> None:
        # a thin space between factors: out_{o1} out_{o2} must not read as one word
        super().__init__({"mul_symbol": r"\,", **settings})
        self.names = names

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        return self.names.get(expr) or super()._print_Symbol(expr, style)

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        return _plain_argument(expr, str(super()._print_Function(expr, exp)), self._print)


def _plain_argument(expr: sp.Function, text: str, show: Any) -> str:
    """f(z^{2}_{1}) in plain brackets: \\left( \\right) around a symbol with two scripts grows too tall."""
    if len(expr.args) == 1 and isinstance(expr.args[0], sp.Symbol):
        arg = show(expr.args[0])
        return text.replace(rf"{{\left({arg} \right)}}", f"({arg})").replace(rf"\left({arg} \right)", f"({arg})")
    return text


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

    bare = False  # True while printing the lone argument of a function: its brackets suffice

    def _print_Symbol(self, expr: sp.Symbol, style: str = "plain") -> str:
        if expr not in self.values:
            return self.names.get(expr) or super()._print_Symbol(expr, style)
        near = offset_of(self.values, expr)
        if near is not None:  # ±1 in floats, not exactly: 1 − 3.2×10⁻²⁷, so that 1 − out never reads 1 − 1
            whole, gap = near
            sign = "-" if gap < 0 else "+"
            text = f"{whole} {sign} {latex_number(abs(gap), self.digits)}"
            return text if self.bare else f"({text})"
        value = self.values[expr]
        text = latex_number(value, self.digits)
        return rf"\left({text}\right)" if value < 0 and not self.bare else text

    def complement(self, expr: sp.Basic) -> float | None:
        """The value of 1 − out (1 + out, 1 − out²) for an out that is ±1 in floats but not exactly: printed as
        that number (3.2×10⁻²⁷), never as 1 − 1."""
        if not isinstance(expr, sp.Add) or len(expr.args) != 2:
            return None
        constant = next((a for a in expr.args if a.is_Integer), None)
        rest = next((a for a in expr.args if not a.is_Integer), None)
        if constant is None or rest is None:
            return None
        coeff, body = rest.as_coeff_Mul()
        if coeff not in (1, -1):
            return None
        if isinstance(body, sp.Symbol):
            near = offset_of(self.values, body)
            if near is not None and int(constant) + int(coeff) * near[0] == 0:
                return float(coeff) * near[1]
        elif isinstance(body, sp.Pow) and body.exp == 2 and isinstance(body.base, sp.Symbol):
            near = offset_of(self.values, body.base)
            if near is not None and int(constant) == 1 and coeff == -1:
                whole, gap = near
                return -2 * whole * gap - gap * gap
        return None

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        value = self.complement(expr)
        if value is not None:
            text = latex_number(value, self.digits)
            return rf"\left({text}\right)" if value < 0 else text
        return str(super()._print_Add(expr, order))

    def _needs_mul_brackets(self, expr: sp.Basic, first: bool = False, last: bool = False) -> bool:
        value = self.complement(expr)
        if value is not None:
            return False  # a number: bracketed by itself when negative
        return bool(super()._needs_mul_brackets(expr, first=first, last=last))

    def parenthesize(self, item: sp.Basic, level: int, is_neg: bool = False, strict: bool = False) -> str:
        if self.complement(item) is not None:
            return str(self._print(item))
        return str(super().parenthesize(item, level, is_neg, strict))

    def _print_Function(self, expr: sp.Function, exp: str | None = None) -> str:
        self.bare = len(expr.args) == 1 and isinstance(expr.args[0], sp.Symbol)
        try:
            return str(super()._print_Function(expr, exp))
        finally:
            self.bare = False


def offset_of(values: Mapping[sp.Symbol, float], symbol: sp.Symbol) -> tuple[int, float] | None:
    """(±1, the gap) when ``values`` knows ``symbol`` is ±1 in floats but not exactly (a saturated out)."""
    find = getattr(values, "offset", None)
    return find(symbol) if find is not None else None


def text(expr: sp.Basic) -> str:
    return str(TextPrinter().doprint(expr))


def products_text(products: Sequence[tuple[sp.Expr, sp.Expr]], bias: sp.Expr | None) -> str | None:
    """``text(Σ w·out + b)`` written straight from the products, without building or sorting a sympy sum (a LeNet
    net has 150 products; sympy's ordering and printing took 99 of 149 s of ``show lenet --full``).

    Exactly what :func:`text` prints, for the case it covers: at least two terms, every factor a plain Symbol
    named differently from every other (so no two terms merge and no coefficient or power appears). Then sympy
    writes each product's factors in the order of their names, and :class:`_NumericOrder` sorts the terms, all of
    coefficient 1, by :func:`natural_key`; when two keys tie (x01, x1) sympy's own order would decide, so None is
    returned, as for anything else outside the case: the caller prints the sympy sum.
    """
    symbols = [s for pair in products for s in pair]
    if bias is not None:
        symbols.append(bias)
    if len(symbols) < 3 or any(type(s) is not sp.Symbol for s in symbols):
        return None
    if len({s.name for s in symbols}) < len(symbols):
        return None
    terms = [f"{a.name}*{b.name}" if a.name < b.name else f"{b.name}*{a.name}" for a, b in products]
    if bias is not None:
        terms.append(bias.name)
    keyed = sorted((natural_key(t), t) for t in terms)
    if any(keyed[i][0] == keyed[i + 1][0] for i in range(len(keyed) - 1)):
        return None
    return " + ".join(t for _, t in keyed)


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
