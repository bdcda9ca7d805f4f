"""The equation chain ``lhs = formula = numbers = value``: one neutral type for every medium.

A chain holds sympy expressions and floats, never text. A printer turns it into
the strings of one medium (plain text, LaTeX); :meth:`ChainPrinter.sides` is the
one place that decides which sides are shown: a side that reads the same as an
earlier one, or as the bracketed value, is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from . import printing as pr
from .branches import branch_at
from .numbers import DEFAULT_DIGITS, bracket, format_number, latex_bracket, latex_number


@dataclass(frozen=True)
class Partial:
    """∂of/∂wrt."""

    of: sp.Symbol
    wrt: sp.Symbol


@dataclass(frozen=True)
class Contribution:
    """The part of ∂of/∂wrt carried by one path, named by the neurons' outs it passes through."""

    of: sp.Symbol
    wrt: sp.Symbol
    via: tuple[sp.Symbol, ...]


Quantity: TypeAlias = sp.Symbol | Partial | Contribution


@dataclass(frozen=True)
class Formula:
    """The right-hand side in symbols."""

    expr: sp.Basic


@dataclass(frozen=True)
class Substituted:
    """The same formula with every symbol replaced by its value."""

    expr: sp.Basic


@dataclass(frozen=True)
class Product:
    """Quantities multiplied: ∂E/∂out · ∂out/∂net · ∂net/∂w."""

    quantities: tuple[Quantity, ...]


@dataclass(frozen=True)
class Grouped:
    """A sum of products of quantities, times common factors: (∂E/∂net_o1 · ∂net_o1/∂out_h1 + …) · ∂out_h1/∂net_h1."""

    terms: tuple[tuple[Quantity, ...], ...]
    factor: tuple[Quantity, ...] = ()


@dataclass(frozen=True)
class Numbers:
    """Values joined by an operator ("*" or "+"), negatives bracketed."""

    values: tuple[float, ...]
    op: str = "*"


@dataclass(frozen=True)
class Elided:
    """A long sum shown by its first terms, "…", and its last terms; times ``factor`` when one is given."""

    head: tuple[sp.Basic, ...]
    tail: tuple[sp.Basic, ...]
    factor: sp.Basic | None = None  # (w δ + … + w δ) · f'(net): a hidden δ over a wide layer
    over: sp.Basic | None = None  # a numerator: one fraction e^{z1}/(e^{z1} + e^{z2} + ⋯ + e^{z10}) (a softmax)
    numbers: bool = False  # every term with its numbers substituted


@dataclass(frozen=True)
class Value:
    """The final number."""

    value: float


Side: TypeAlias = Formula | Substituted | Product | Grouped | Numbers | Elided | Value


@dataclass(frozen=True)
class EquationChain:
    """``lhs = side = side = …``."""

    lhs: Quantity
    sides: tuple[Side, ...]

    @property
    def value(self) -> float | None:
        """The last side's number, when the chain ends in one."""
        last = self.sides[-1] if self.sides else None
        return last.value if isinstance(last, Value) else None


def definition(lhs: Quantity, expr: sp.Basic, value: float | None, numbers: bool = True) -> EquationChain:
    """lhs = expr = expr with numbers = value (the usual chain of a defined quantity)."""
    sides: list[Side] = [Formula(expr)]
    if numbers and value is not None and not isinstance(expr, sp.Number):
        sides.append(Substituted(expr))
    if value is not None:
        sides.append(Value(value))
    return EquationChain(lhs, tuple(sides))


def product(
    lhs: Quantity, quantities: tuple[Quantity, ...], values: tuple[float | None, ...], value: float | None
) -> EquationChain:
    """lhs = q1 · q2 · … = v1 · v2 · … = value."""
    sides: list[Side] = [Product(quantities)] if quantities else []
    if value is not None and all(v is not None for v in values):
        sides.append(Numbers(tuple(v for v in values if v is not None), "*"))
        sides.append(Value(value))
    return EquationChain(lhs, tuple(sides))


def total(lhs: Quantity, values: tuple[float | None, ...], value: float | None) -> EquationChain:
    """lhs = v1 + v2 + … = value."""
    if value is None or any(v is None for v in values):
        return EquationChain(lhs, ())
    return EquationChain(lhs, (Numbers(tuple(v for v in values if v is not None), "+"), Value(value)))


class ChainPrinter:
    """Prints the sides of a chain in one medium; subclasses say how each piece is written."""

    times = " · "
    plus = " + "
    dots = "…"
    brackets = ("(", ")")

    def bracket_text(self, text: str) -> str:
        return self.brackets[0] + text + self.brackets[1]

    def __init__(self, point: Mapping[sp.Symbol, float] | None, digits: int = DEFAULT_DIGITS) -> None:
        self.point = point or {}
        self.digits = digits

    # -- what a medium defines ------------------------------------------------

    def quantity(self, q: Quantity) -> str:
        raise NotImplementedError

    def formula(self, expr: sp.Basic) -> str:
        raise NotImplementedError

    def substituted(self, expr: sp.Basic) -> str:
        raise NotImplementedError

    def number(self, value: float) -> str:
        raise NotImplementedError

    def bracketed(self, value: float) -> str:
        raise NotImplementedError

    def when(self, conditions: tuple[sp.Basic, ...]) -> str:
        """The conditions that pick a branch, after its formula: "   (z ≤ 0)"."""
        raise NotImplementedError

    def fraction(self, numerator: str, denominator: str) -> str:
        return f"{numerator} / ({denominator})"

    def is_bracketed(self, text: str, value: float) -> bool:
        """Whether ``text`` is ``value`` in brackets (a lone negative symbol substituted): its value follows."""
        return text == self.bracketed(value)

    # -- shared ---------------------------------------------------------------

    def side(self, side: Side) -> str:
        if isinstance(side, Formula):
            return self.formula(side.expr)
        if isinstance(side, Substituted):
            return self.substituted(side.expr)
        if isinstance(side, Product):
            return self.times.join(self.quantity(q) for q in side.quantities)
        if isinstance(side, Grouped):
            inner = self.plus.join(self.grouped_terms(side))
            if not side.factor:
                return inner
            return self.bracket_text(inner) + "".join(self.times + self.quantity(q) for q in side.factor)
        if isinstance(side, Numbers):
            joiner = self.times if side.op == "*" else self.plus
            return joiner.join(self.bracketed(v) for v in side.values)
        if isinstance(side, Elided):
            write = self.substituted if side.numbers else self.formula
            pieces = [write(t) for t in side.head] + [self.dots] + [write(t) for t in side.tail]
            total = self.plus.join(pieces)
            if side.over is not None:
                return self.fraction(write(side.over), total)
            if side.factor is None:
                return total
            factor = self.formula(side.factor)
            if isinstance(side.factor, sp.Add):  # (…) · (1 − a²), not (…) · 1 − a²
                factor = self.bracket_text(factor)
            # BP2's order, as every other hidden δ is written: (Wᵀ δ) ⊙ f'(z), the sum first
            return self.bracket_text(total) + self.times + factor
        return self.number(side.value)

    def grouped_terms(self, side: Grouped) -> list[str]:
        """The terms of a grouped sum; more than three are shown by the first two, "…" and the last."""
        terms = [self.times.join(self.quantity(q) for q in term) for term in side.terms]
        return terms if len(terms) <= 3 else [*terms[:2], self.dots, terms[-1]]

    def sides(self, chain: EquationChain) -> list[str]:
        """The lhs, then every side that says something new.

        A formula with steps or kinks (relu', elu) is shown by the branch that holds at
        the point, with the condition that picks it: e^(z) (z ≤ 0), not (1 − θ(z))·e^(z − max(0, z)) + θ(z).
        """
        parts = [self.quantity(chain.lhs)]
        value = chain.value
        formula = next((s.expr for s in chain.sides if isinstance(s, Formula)), None)
        branch = branch_at(formula, self.point) if formula is not None and self.point else None
        for side in chain.sides:
            if isinstance(side, Substituted) and not self.point:
                continue
            if branch is not None and isinstance(side, (Formula, Substituted)) and side.expr == formula:
                expr, conditions = branch
                if isinstance(side, Formula):
                    shown = self.number(float(expr)) if isinstance(expr, sp.Number) else self.formula(expr)
                    parts.append(shown + self.when(conditions))
                    if isinstance(expr, sp.Number) and value is not None and float(expr) == value:
                        break  # relu' = 1 (z > 0): the number is the value
                    continue
                if isinstance(expr, sp.Number) or not expr.free_symbols:
                    continue  # the value follows
                side = Substituted(expr)
            text = self.side(side)
            if text in parts:
                continue
            if isinstance(side, Substituted) and value is not None and self.is_bracketed(text, value):
                continue  # a lone negative symbol: its value follows
            parts.append(text)
        return parts


class TextChainPrinter(ChainPrinter):
    """Plain text with the spec's names: out_o1*(1 - out_o1)."""

    def quantity(self, q: Quantity) -> str:
        if isinstance(q, Contribution):
            return f"{pr.partial_text(q.of, q.wrt)} via {', '.join(s.name for s in q.via)}"
        return pr.partial_text(q.of, q.wrt) if isinstance(q, Partial) else q.name

    def formula(self, expr: sp.Basic) -> str:
        return pr.text(expr)

    def substituted(self, expr: sp.Basic) -> str:
        return pr.text_values(expr, self.point, self.digits)

    def number(self, value: float) -> str:
        return format_number(value, self.digits)

    def bracketed(self, value: float) -> str:
        return bracket(self.number(value), value)

    def when(self, conditions: tuple[sp.Basic, ...]) -> str:
        shown = [pr.text(c).replace("<=", "≤").replace(">=", "≥").replace("==", "=") for c in conditions]
        return f"   ({', '.join(shown)})" if shown else ""


def _natural(text: str) -> tuple[object, ...]:
    """A sort key that puts x2 before x10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def reading_order(expr: sp.Add) -> list[sp.Basic]:
    """The terms of a sum as a person writes them: positive first, a constant first, lone symbols last, 1, 2, …, 10."""

    def key(term: sp.Basic) -> tuple[object, ...]:
        negative = term.could_extract_minus_sign()
        body = -term if negative else term
        return (negative, not body.is_Number, body.is_Symbol, _natural(str(body)))

    return sorted(sp.Add.make_args(expr), key=key)


Depth: TypeAlias = Callable[[sp.Symbol], float]


def chain_depth(network: Any) -> Depth:
    """How far along the chain from the input to E a symbol sits: an input 0, a layer's net, out and δ its index,
    a weight half a layer below its neuron, a target beyond every layer (the loss's own factor comes first)."""
    info = network.info
    top = len(network.layers)

    def depth(symbol: sp.Symbol) -> float:
        i = info.get(getattr(symbol, "name", ""))
        if i is None:
            return -1.0
        kind = str(i.kind)
        if kind == "target":
            return top + 1.0
        if kind in ("weight", "bias"):
            return i.layer - 0.5
        return float(i.layer)

    return depth


def chain_ordered(factors: list[sp.Basic], depth: Depth) -> list[sp.Basic]:
    """Factors in the chain rule's order, from E back to the input; an activation before its derivative."""

    def key(f: sp.Basic) -> tuple[float, int]:
        symbols = [s for s in f.free_symbols if isinstance(s, sp.Symbol)]
        deepest = max((depth(s) for s in symbols), default=-2.0)
        return (-deepest, 0 if f.is_Symbol or isinstance(f, sp.Function) else 1)

    return sorted(factors, key=key)


def tidy(expr: sp.Basic) -> sp.Basic:
    """sinh(a)/cosh(a) written tanh(a), as a person writes it (log cosh's derivative)."""
    for s in expr.atoms(sp.sinh):
        (a,) = s.args
        expr = expr.subs(sp.sinh(a) / sp.cosh(a), sp.tanh(a))
    return expr


class _ReadingOrder:
    """Sums in reading order, ½ written in front: ½(target − out)², not (−out + target)²/2.

    With a ``depth`` (:func:`chain_depth`), a product with more than symbols in it is written in the order of
    the chain rule, from E back to the input: (out − target) · f(net)(1 − f(net)) · w, an activation beside
    its derivative; a plain product of symbols (i1 w1) keeps sympy's order.
    """

    depth: Depth | None = None

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        complement = getattr(self, "complement", None)
        value = complement(expr) if complement is not None else None
        if value is not None:  # 1 − out for a saturated out: its value (see ValueLatexPrinter.complement)
            shown = latex_number(value, self.digits)  # type: ignore[attr-defined]
            return rf"\left({shown}\right)" if value < 0 else shown
        text = ""
        for term in reading_order(expr):
            negative = term.could_extract_minus_sign()
            body = self._print(-term if negative else term)  # type: ignore[attr-defined]
            if isinstance(-term if negative else term, sp.Add):
                body = rf"\left({body}\right)"
            if not text:
                text = f"- {body}" if negative else body
            else:
                text += f" - {body}" if negative else f" + {body}"
        return text

    def _print_Mul(self, expr: sp.Mul) -> str:
        coeff, rest = expr.as_coeff_Mul()
        if coeff.is_Rational and not coeff.is_Integer and abs(coeff.p) == 1 and rest != 1:
            sign = "- " if coeff < 0 else ""
            return rf"{sign}\frac{{1}}{{{coeff.q}}}\," + self.parenthesize(rest, 50)  # type: ignore[attr-defined]
        chained = self._chain_order(expr)
        return chained if chained is not None else str(super()._print_Mul(expr))  # type: ignore[misc]

    def _chain_order(self, expr: sp.Mul) -> str | None:
        depth = self.depth
        if depth is None:
            return None
        coeff, rest = expr.as_coeff_Mul()
        if coeff not in (1, -1) and not isinstance(coeff, sp.Float):
            return None
        factors = list(sp.Mul.make_args(rest))
        if isinstance(coeff, sp.Float):
            factors.append(coeff)
        elif coeff == -1 and len(factors) > 1 and any(isinstance(f, sp.Float) for f in factors):
            return None  # a sign and a number: sympy's own
        if len(factors) < 2 or all(f.is_Symbol for f in factors):
            return None
        if any(f.is_Rational and not f.is_Integer for f in factors):
            return None
        if any(f.is_Pow and f.exp.is_negative for f in factors):
            return None  # a fraction: sympy's own \frac

        ordered = chain_ordered(factors, depth)
        joiner = self._settings["mul_symbol_latex"]  # type: ignore[attr-defined]
        body = joiner.join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in ordered)  # type: ignore[attr-defined]
        return f"- {body}" if coeff == -1 else body


class ReadableLatexPrinter(_ReadingOrder, pr.NamedLatexPrinter):
    """The network's spellings, in reading order."""

    def _print_Piecewise(self, expr: sp.Piecewise) -> str:
        """Cases with their conditions only (no "for"/"otherwise": the page may be in any language)."""
        rows = []
        for i, (value, condition) in enumerate(expr.args):
            if condition is sp.true:  # the last case: the others' complement, said outright
                others = [c for _, c in expr.args[:i]]
                condition = sp.And(*(sp.Not(c) for c in others)) if others else sp.true
            rows.append(rf"{self._print(value)}, & {self._print(condition)}")
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"


class ReadableValuePrinter(_ReadingOrder, pr.ValueLatexPrinter):
    """Numbers for symbols, in the same order as :class:`ReadableLatexPrinter`; −(−0.3) is 0.3."""

    def _print_Float(self, expr: sp.Float) -> str:
        """A number already shown (a factor used by value) as every number is: 0.99216592, never 1.0."""
        return latex_number(float(expr), self.digits)

    def _print_exp(self, expr: sp.exp, exp: str | None = None) -> str:
        """e^{−0.1}: an exponent needs no brackets around a negative number."""
        arg = expr.args[0]
        if isinstance(arg, sp.Symbol) and arg in self.values and exp is None:
            return f"e^{{{latex_number(self.values[arg], self.digits)}}}"
        return str(super()._print_ExpBase(expr, exp))

    def _print_Mul(self, expr: sp.Mul) -> str:
        if len(expr.args) == 2 and expr.args[0] == -1 and isinstance(expr.args[1], sp.Symbol):
            value = self.values.get(expr.args[1])
            if value is not None and value < 0:
                return latex_number(-value, self.digits)
        return super()._print_Mul(expr)


class LatexChainPrinter(ChainPrinter):
    r"""LaTeX with the network's spellings: \mathrm{out}_{o1}."""

    times = r" \cdot "
    dots = r"\dots"
    brackets = (r"\left(", r"\right)")

    def fraction(self, numerator: str, denominator: str) -> str:
        return rf"\frac{{{numerator}}}{{{denominator}}}"

    def side(self, side: Side) -> str:
        return plain_fences(super().side(side))

    def __init__(
        self,
        names: Mapping[sp.Symbol, str],
        point: Mapping[sp.Symbol, float] | None,
        digits: int = DEFAULT_DIGITS,
        depth: Depth | None = None,
    ) -> None:
        super().__init__(point, digits)
        self.names = names
        self.depth = depth  # with it, products are written in the chain rule's order

    def quantity(self, q: Quantity) -> str:
        if isinstance(q, Contribution):
            via = ",".join(self.names.get(s) or s.name for s in q.via)
            return rf"\Bigl({pr.partial_latex(q.of, q.wrt, self.names)}\Bigr)_{{{via}}}"
        if isinstance(q, Partial):
            return pr.partial_latex(q.of, q.wrt, self.names)
        return self.names.get(q) or q.name

    def formula(self, expr: sp.Basic) -> str:
        printer = ReadableLatexPrinter(self.names)
        printer.depth = self.depth
        return plain_fences(str(printer.doprint(tidy(expr))))

    def substituted(self, expr: sp.Basic) -> str:
        printer = ReadableValuePrinter(self.point, self.names, self.digits)
        printer.depth = self.depth
        return plain_fences(str(printer.doprint(tidy(expr))))

    def number(self, value: float) -> str:
        return latex_number(value, self.digits)

    def bracketed(self, value: float) -> str:
        return latex_bracket(self.number(value), value)

    def is_bracketed(self, text: str, value: float) -> bool:
        return plain_fences(text) == plain_fences(self.bracketed(value))  # (−0.6475) and \left(−0.6475\right) alike

    def sides(self, chain: EquationChain) -> list[str]:
        """As every medium's, with a saturated out's value written 1 − 3.2×10⁻²⁷ (its float reads 1)."""
        parts = super().sides(chain)
        value = chain.value
        if value is None or not parts or parts[-1] != self.number(value):
            return parts
        formula = next((s.expr for s in chain.sides if isinstance(s, Formula)), None)
        # out_h1 = … = 1 − 3.2×10⁻²⁷, and ∂net_o1/∂w = out_h1 = 1 − 3.2×10⁻²⁷ (not "= 1" after it)
        named = chain.lhs if isinstance(chain.lhs, sp.Symbol) else formula if isinstance(formula, sp.Symbol) else None
        near = pr.offset_of(self.point, named) if named is not None else None
        if near is not None:
            whole, gap = near
            text = f"{whole} {'-' if gap < 0 else '+'} {latex_number(abs(gap), self.digits)}"
            parts = [p for p in parts[:-1] if p not in (text, f"({text})")] + [text]
        return parts

    def when(self, conditions: tuple[sp.Basic, ...]) -> str:
        shown = [str(ReadableLatexPrinter(self.names).doprint(c)) for c in conditions]
        return rf"\quad\left({', '.join(shown)}\right)" if shown else ""


_INNERMOST_FENCE = re.compile(r"\\left\((?P<body>(?:(?!\\left|\\right).)*?)\\right\)")
_TALL = re.compile(r"\\(frac|dfrac|sum|prod|sqrt|begin|int)\b")


def plain_fences(latex: str) -> str:
    r"""``\left( … \right)`` around nothing taller than a line as plain brackets, as TeX's own are: around
    z^{4}_{1} − y_{1} a sized fence grows with the scripts and reads oversized. Around a fraction it stays."""

    def plain(m: re.Match[str]) -> str:
        body = m.group("body")
        return m.group(0) if _TALL.search(body) else f"({body})"

    while True:
        shown = _INNERMOST_FENCE.sub(plain, latex)
        if shown == latex:
            return latex
        latex = shown
