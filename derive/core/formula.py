"""The safe formula parser: spec text → sympy expression, never through eval.

A formula may contain numbers, the variables it is given, + - * / ** and
parentheses, and the functions of :data:`FUNCTIONS`. Anything else is a
:class:`FormulaError` naming the formula and the offending token. Constants are
bounded, so ``x**(9**9**9)`` is refused instead of hanging.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sympy as sp

from ..errors import FormulaError, suggest
from ..spec.builtins import FUNCTIONS as BUILTIN_FUNCTIONS

MAX_LENGTH = 400
MAX_DEPTH = 40
MAX_CONSTANT = 1e6
MAX_EXPONENT = 64
MAX_GROWTH_NESTING = 3  # exp, sinh, cosh inside one another: exp(exp(exp(x))) at most (values past 10^(10^6) beyond)
MAX_EXPANDED_TERMS = 512  # terms a formula or its derivative would expand to (tanh nested 9 deep: 2⁹)
GROWING = (sp.exp, sp.sinh, sp.cosh)

# each function of the table (derive.spec.builtins) as sympy builds it
SYMPY_FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "exp": sp.exp,
    "log": sp.log,
    "ln": sp.log,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "sin": sp.sin,
    "cos": sp.cos,
    "atan": sp.atan,
    "erf": sp.erf,
    "max": sp.Max,
    "min": sp.Min,
}
FUNCTIONS: dict[str, tuple[int, Callable[..., sp.Expr]]] = {
    name: (entry.arity, SYMPY_FUNCTIONS[name]) for name, entry in BUILTIN_FUNCTIONS.items()
}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}
FLOAT_FUNCTIONS: dict[str, Callable[..., float]] = {  # the table's functions on floats, to size a constant
    "exp": math.exp,
    "log": math.log,
    "ln": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "tanh": math.tanh,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "sin": math.sin,
    "cos": math.cos,
    "atan": math.atan,
    "erf": math.erf,
    "max": max,
    "min": min,
}

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|[-+*/(),])|(?P<bad>\S))"
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def parse_formula(text: str, variables: Mapping[str, sp.Symbol], where: str = "formula") -> sp.Expr:
    """Parse ``text`` into a sympy expression over ``variables``.

    ``where`` names the spec key in error messages.
    """
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula longer than {MAX_LENGTH} characters", where)
    expr = _Parser(text, dict(variables), where).parse()
    check_cost(expr, f"{text!r}", where)
    return expr


def check_cost(expr: sp.Expr, what: str, where: str) -> None:
    """Refuse an expression that is not a finite real one, or whose symbolic cost would explode.

    The cost is measured on the expression, not by a clock: how deep exp/sinh/cosh nest
    (each level exponentiates the size of the numbers) and how many terms expanding it
    would give (products of sums multiply). ``what`` names it in the message.
    """
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise FormulaError(f"{what}: not finite (log(0), or a division by zero)", where)
    if expr.has(sp.I):
        raise FormulaError(f"{what}: not a real number (the square root or log of a negative number)", where)
    nesting = _growth_nesting(expr)
    if nesting > MAX_GROWTH_NESTING:
        raise FormulaError(
            f"{what}: exp, sinh or cosh nested {nesting} deep; the limit is {MAX_GROWTH_NESTING} (growth nesting limit)",
            where,
        )
    terms = expanded_terms(expr)
    if terms > MAX_EXPANDED_TERMS:
        raise FormulaError(
            f"{what}: would expand to about {terms:,} terms; the limit is {MAX_EXPANDED_TERMS} (expansion limit)",
            where,
            hint="a formula nested this deep makes every derivation and generated module too large",
        )


def _growth_nesting(expr: sp.Basic) -> int:
    """How many exp/sinh/cosh lie inside one another at most (walked with a stack)."""
    deepest, stack = 0, [(expr, 0)]
    while stack:
        node, depth = stack.pop()
        depth += isinstance(node, GROWING)
        deepest = max(deepest, depth)
        stack.extend((arg, depth) for arg in node.args)
    return deepest


def expanded_terms(expr: sp.Basic, cap: int = 10**9) -> int:
    """An estimate of the terms ``sp.expand`` would give, capped: sums add, products multiply, functions are one.

    Each function's argument counts too (it is expanded inside), so tanh nested n deep,
    whose derivative is a product of n sums, estimates 2ⁿ.
    """
    if isinstance(expr, sp.Add):
        return min(cap, sum(expanded_terms(a, cap) for a in expr.args))
    if isinstance(expr, sp.Mul):
        total = 1
        for a in expr.args:
            total = min(cap, total * expanded_terms(a, cap))
        return total
    if isinstance(expr, sp.Pow):
        base = expanded_terms(expr.base, cap)
        e = expr.exp
        if e.is_Integer and 1 < int(e) <= MAX_EXPONENT:  # (a sum of k terms)**n has C(k+n-1, n) monomials
            return min(cap, math.comb(base + int(e) - 1, int(e)))
        return min(cap, base * expanded_terms(e, cap))
    if expr.args:  # a function: one term, and whatever its arguments expand to
        inner = 1
        for a in expr.args:
            inner = min(cap, inner * expanded_terms(a, cap))
        return inner
    return 1


def _tokenize(text: str, where: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - the pattern matches any non-space
            break
        kind = m.lastgroup or "bad"
        tok = m.group(kind)
        tokens.append(_Token(kind, tok, m.start(kind)))
        pos = m.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, variables: dict[str, sp.Symbol], where: str) -> None:
        self.text = text
        self.variables = variables
        self.where = where
        self.tokens = _tokenize(text, where)
        self.i = 0
        self.depth = 0

    def error(self, message: str, hint: str = "") -> FormulaError:
        return FormulaError(f"{self.text!r}: {message}", self.where, hint)

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self, text: str) -> bool:
        if self.tok.kind == "op" and self.tok.text == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if self.tok.kind == "bad":
            raise self.bad_character()
        if not self.take(text):
            found = self.tok.text or "the end"
            raise self.error(f"expected {text!r} at position {self.tok.pos + 1}, found {found!r}")

    def bad_character(self) -> FormulaError:
        tok = self.tok
        hint = "use ** for powers" if tok.text == "^" else "allowed: numbers, + - * / ** ( ) and functions"
        return self.error(f"unexpected character {tok.text!r} at position {tok.pos + 1}", hint)

    def parse(self) -> sp.Expr:
        if self.tok.kind == "end":
            raise self.error("empty formula")
        result = self.expr()
        if self.tok.kind == "bad":
            raise self.bad_character()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r} at position {self.tok.pos + 1}")
        return result

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} deep")

    def expr(self) -> sp.Expr:
        self.nest()
        result = self.term()
        while True:
            if self.take("+"):
                result = result + self.term()
            elif self.take("-"):
                result = result - self.term()
            else:
                break
        self.depth -= 1
        return result

    def term(self) -> sp.Expr:
        result = self.unary()
        while True:
            if self.take("*"):
                result = result * self.unary()
            elif self.take("/"):
                divisor = self.unary()
                if divisor == 0:
                    raise self.error("division by zero")
                result = result / divisor
            else:
                break
        return result

    def unary(self) -> sp.Expr:
        if self.take("-"):
            self.nest()
            value = -self.unary()
            self.depth -= 1
            return value
        if self.take("+"):
            return self.unary()
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        if not self.take("**"):
            return base
        self.nest()
        exponent = self.unary()  # right-associative, and x**-1 is allowed
        self.depth -= 1
        return self.pow(base, exponent)

    def pow(self, base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
        if exponent.is_number:
            e = float(exponent)
            if not math.isfinite(e) or abs(e) > MAX_EXPONENT:
                raise self.error(f"exponent {exponent} is too large (at most {MAX_EXPONENT} in size)")
            if base.is_number:
                b = float(base)
                if b == 0 and e < 0:
                    raise self.error("division by zero (0 to a negative power)")
                if b != 0 and abs(e * math.log(abs(b))) > math.log(MAX_CONSTANT):
                    raise self.error(f"constant {base}**{exponent} is too large")
        return sp.Pow(base, exponent)

    def atom(self) -> sp.Expr:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return self.number(tok.text)
        if tok.kind == "name":
            self.i += 1
            if tok.text in FUNCTIONS:
                return self.call(tok.text)
            if tok.text in self.variables:
                return self.variables[tok.text]
            if tok.text in CONSTANTS:
                return CONSTANTS[tok.text]
            allowed = [*self.variables, *FUNCTIONS, *CONSTANTS]
            hint = suggest(tok.text, allowed) or (
                "variables: " + ", ".join(self.variables) + "; functions: " + ", ".join(FUNCTIONS)
            )
            raise self.error(f"unknown name {tok.text!r}", hint)
        if tok.kind == "bad":
            raise self.bad_character()
        if self.take("("):
            inner = self.expr()
            self.expect(")")
            return inner
        found = tok.text or "the end"
        raise self.error(f"expected a number, name or '(' at position {tok.pos + 1}, found {found!r}")

    def number(self, text: str) -> sp.Expr:
        digits = re.sub(r"[eE].*", "", text)
        if len(digits) > 24:
            raise self.error(f"number {text!r} has too many digits")
        value = float(text)
        if value > MAX_CONSTANT:
            raise self.error(f"number {text} is too large (at most {MAX_CONSTANT:g})")
        if value != 0 and value < 1 / MAX_CONSTANT**2:
            raise self.error(f"number {text} is too small")
        return sp.Rational(text)

    def call(self, name: str) -> sp.Expr:
        arity, function = FUNCTIONS[name]
        self.expect("(")
        args = [self.expr()]
        while self.take(","):
            args.append(self.expr())
        self.expect(")")
        if len(args) != arity:
            raise self.error(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(args)}")
        if all(a.is_number for a in args):  # a constant: its size estimated with floats before sympy evaluates it
            self.constant(name, [float(a) for a in args])
        return function(*args)

    def constant(self, name: str, args: list[float]) -> None:
        """Refuse a constant function call whose value is out of range (exp(exp(12)), log(0), sqrt(-1))."""
        try:
            value = FLOAT_FUNCTIONS[name](*args)
        except (OverflowError, ValueError, ZeroDivisionError):
            value = math.inf
        if not math.isfinite(value) or abs(value) > MAX_CONSTANT or 0 < abs(value) < 1 / MAX_CONSTANT**2:
            raise self.error(
                f"the constant {name}({', '.join(f'{a:g}' for a in args)}) is out of range "
                f"(at most {MAX_CONSTANT:g} in size and, unless 0, at least {1 / MAX_CONSTANT**2:g}; constant limit)"
            )
