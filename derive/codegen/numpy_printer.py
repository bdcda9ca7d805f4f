"""The NumPy printer of generated code: sympy trees as NumPy expressions, rewritten to be stable.

Overflow-prone patterns (σ, log(1 + eᵘ), log-softmax, tanh of a ratio) are rewritten before printing
(:func:`stabilize`), and shared subexpressions are computed once (:func:`cse_lines`). Every generated
module and derive's own engine print through here; spec text never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import sympy as sp
from sympy.printing.str import StrPrinter

from ..core.formula import SYMPY_FUNCTIONS
from ..spec.builtins import FUNCTIONS

SIGMOID_FLOOR = -708.0  # σ's argument is held above it: e^708 is float64's largest power of e
SIGMOID_FLOOR_32 = -87.0  # the same for float32 (e^88 is its largest)


class _Sigmoid(sp.Function):
    """σ(u) = 1/(1 + e^−u), printed without overflow and with a tiny σ keeping its relative precision."""

    nargs = 1


def is_sigmoid_of(expr: sp.Expr, arg: sp.Symbol) -> bool:
    """Whether a formula is σ(arg) once stabilized (1/(1 + exp(−x)), or `sigmoid`)."""
    return stabilize(expr) == _Sigmoid(arg)


def sigmoid_in_place_lines(z: str, a: str) -> list[str]:
    """σ(z) as 1/(1 + e^−max(z, floor)) step by step in z's own buffer (NumPy only: the array API has no out=).

    The same formula as the printed σ, without its four temporary arrays; the last line names the result ``a``.
    """
    floor = f"({SIGMOID_FLOOR!r} if {z}.dtype == np.float64 else {SIGMOID_FLOOR_32!r})"
    return [
        f"# 1/(1 + e^−max({z}, −708)), −87 in float32: e^−{z} cannot overflow, a tiny σ keeps its precision",
        f"np.maximum({z}, {floor}, out={z})",
        f"np.negative({z}, out={z})",
        f"np.exp({z}, out={z})",
        f"{z} += 1",
        f"{a} = np.reciprocal({z}, out={z})",
    ]


class _ExpOfNegAbs(sp.Function):
    """e^−|u|: never above 1; even in u."""

    nargs = 1

    @classmethod
    def eval(cls, arg: sp.Expr) -> sp.Expr | None:
        if arg.could_extract_minus_sign():
            return cls(-arg)
        return None


class _IfNegative(sp.Function):
    """_IfNegative(e, u) = e if u < 0 else 1, printed e**(u < 0): exact, and pure Python for numbers."""

    nargs = 2


def one_exponential(expr: sp.Expr) -> sp.Expr:
    """Every σ(u) as e^−|u|^[u<0] / (1 + e^−|u|): one exponential, shared by σ(u) and σ(−u) after cse.

    For the closed-form module, whose arguments are mostly Python numbers: one NumPy
    call per σ (the rest is Python arithmetic), exact, and finite for any u.
    """

    def rewrite(sigmoid: sp.Function) -> sp.Expr:
        u = sigmoid.args[0]
        e = _ExpOfNegAbs(u)
        return _IfNegative(e, u) / (1 + e)

    return expr.replace(lambda e: isinstance(e, _Sigmoid), rewrite)


class _StableSoftplus(sp.Function):
    """log(1 + exp(u)), printed without overflow: logaddexp(0, u)."""

    nargs = 1


class _StableLogCosh(sp.Function):
    """log(cosh(u)), printed without overflow: logaddexp(u, −u) − log 2."""

    nargs = 1


def _one_plus_exp(base: sp.Basic) -> sp.Expr | None:
    """u when base is 1 + e^u."""
    if isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.One in base.args:
        other = base.args[0] if base.args[1] == 1 else base.args[1]
        if isinstance(other, sp.exp):
            return other.args[0]
    return None


def _stable_product(mul: sp.Mul) -> sp.Expr:
    """e^(m·u) · (1 + e^u)^(−k) with 0 ≤ m ≤ k  →  σ(u)^m · σ(−u)^(k−m)."""
    factors = list(mul.args)
    for i, f in enumerate(factors):
        if not (isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0):
            continue
        u = _one_plus_exp(f.base)
        if u is None:
            continue
        k = int(-f.exp)
        for j, g in enumerate(factors):
            if j != i and isinstance(g, sp.exp):
                m = sp.simplify(g.args[0] / u)
                if m.is_Integer and 0 < m <= k:
                    rest = [h for n, h in enumerate(factors) if n not in (i, j)]
                    return sp.Mul(*rest, _Sigmoid(u) ** int(m), _Sigmoid(-u) ** (k - int(m)))
        rest = [h for n, h in enumerate(factors) if n != i]
        return sp.Mul(*rest, _Sigmoid(-u) ** k)
    return mul


def stabilize(expr: sp.Expr) -> sp.Expr:
    """Rewrite subexpressions that overflow in floating point into stable equivalents.

    These are identities, applied to any formula wherever they occur:
    log(1 + e^u) = softplus(u), 1/(1 + e^u) = σ(−u), e^u/(1 + e^u) = σ(u),
    and more generally e^(m·u)/(1 + e^u)^k = σ(u)^m σ(−u)^(k−m); also
    log(cosh(u)) = logaddexp(u, −u) − log 2 and sinh(u)/cosh(u) = tanh(u);
    a softmax e^u_j / Σ_i e^u_i is shifted by max_i u_i.
    """
    u = sp.Wild("u")
    expr = expr.replace(sp.log(1 + sp.exp(u)), lambda u: _StableSoftplus(u))
    expr = expr.replace(sp.log(sp.cosh(u)), lambda u: _StableLogCosh(u))
    expr = expr.replace(lambda e: isinstance(e, sp.Mul), _tanh_of_ratio)
    expr = expr.replace(lambda e: isinstance(e, sp.Mul), _sigmoid_pair)
    expr = expr.replace(lambda e: isinstance(e, sp.Mul), _shifted_softmax)
    expr = expr.replace(lambda e: isinstance(e, sp.Mul), _stable_product)
    return expr.replace(
        lambda e: isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp < 0 and _one_plus_exp(e.base) is not None,
        _reciprocal_sigmoid,
    )


class _Largest(sp.Function):
    """max(u_1, …, u_n), left unevaluated (sympy's Max compares its arguments, slowly, at every rebuild)."""


class _Smallest(sp.Function):
    """min(u_1, …, u_n), left unevaluated, as :class:`_Largest`."""


def _plain_extrema(expr: sp.Basic, memo: dict[sp.Basic, sp.Basic]) -> sp.Basic:
    """Every Max and Min as :class:`_Largest` and :class:`_Smallest`, bottom up (never rebuilding a Max)."""
    if expr in memo:
        return memo[expr]
    if expr.is_Atom:
        return expr
    args = [_plain_extrema(a, memo) for a in expr.args]
    if isinstance(expr, sp.Max):
        result: sp.Basic = _Largest(*args)
    elif isinstance(expr, sp.Min):
        result = _Smallest(*args)
    else:
        result = expr.func(*args) if any(a is not b for a, b in zip(args, expr.args)) else expr
    memo[expr] = result
    return result


def _sum_of_exps(base: sp.Basic) -> tuple[sp.Expr, ...] | None:
    """(u_1, …, u_n) when base is e^u_1 + … + e^u_n with n ≥ 2 (a softmax's denominator)."""
    if isinstance(base, sp.Add) and len(base.args) >= 2 and all(isinstance(a, sp.exp) for a in base.args):
        return tuple(a.args[0] for a in base.args)
    return None


def _shifted_softmax(mul: sp.Mul) -> sp.Expr:
    """e^u_j1 ⋯ e^u_jm · (Σ_i e^u_i)^(−k), m ≤ k  →  the same with every u shifted by M = max_i u_i.

    The shift cancels (m = k) or leaves e^(−(k−m)·M); every other exponential is then
    at most 1 and the sum at least 1, so nothing overflows where the softmax is finite.
    """
    factors = list(mul.args)
    for i, f in enumerate(factors):
        if not (isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < 0):
            continue
        us = _sum_of_exps(f.base)
        if us is None:
            continue
        k = int(-f.exp)
        numerator = [j for j, g in enumerate(factors) if isinstance(g, sp.exp) and g.args[0] in us]
        if not 0 < len(numerator) <= k:
            continue
        shift = _Largest(*us)
        shifted = [sp.exp(factors[j].args[0] - shift) for j in numerator]
        rest = [g for n, g in enumerate(factors) if n != i and n not in numerator]
        denominator = sp.Add(*(sp.exp(u - shift) for u in us)) ** -k
        leftover = sp.exp(-(k - len(numerator)) * shift)
        return sp.Mul(*rest, *shifted, leftover, denominator)
    return mul


def _sigmoid_pair(mul: sp.Mul) -> sp.Expr:
    """σ(u)·σ(−u) → e^−|u| / (1 + e^−|u|)², the sigmoid's slope: one exponential, shared."""
    factors = list(mul.args)
    for i, f in enumerate(factors):
        for j, g in enumerate(factors[i + 1 :], start=i + 1):
            if isinstance(f, _Sigmoid) and isinstance(g, _Sigmoid) and f.args[0] == -g.args[0]:
                rest = [h for n, h in enumerate(factors) if n not in (i, j)]
                e = _ExpOfNegAbs(f.args[0])
                return sp.Mul(*rest, e, (1 + e) ** -2)
    return mul


def _tanh_of_ratio(mul: sp.Mul) -> sp.Expr:
    """sinh(u) · cosh(u)^(−1) → tanh(u): the ratio is inf/inf for |u| > 710."""
    factors = list(mul.args)
    for i, f in enumerate(factors):
        if isinstance(f, sp.sinh):
            for j, g in enumerate(factors):
                if isinstance(g, sp.Pow) and g.exp == -1 and isinstance(g.base, sp.cosh):
                    u, v = f.args[0], g.base.args[0]
                    if u == v or u == -v:  # sympy writes sinh(x − t) as −sinh(t − x), cosh(x − t) as cosh(t − x)
                        rest = [h for n, h in enumerate(factors) if n not in (i, j)]
                        return sp.Mul(*rest, sp.tanh(u))
    return mul


def _reciprocal_sigmoid(power: sp.Pow) -> sp.Expr:
    """(1 + e^u)^(−k) → σ(−u)^k."""
    u = _one_plus_exp(power.base)
    assert u is not None
    return _Sigmoid(-u) ** int(-power.exp)


class NumpyCodePrinter(StrPrinter):
    """Python source for NumPy, with ``np.`` functions and array names for symbols."""

    # sympy's class name → the NumPy call, from the table of formula functions (sqrt, max and min print as
    # Pow, Max and Min below), and sign, which derivatives of abs bring in
    _FUNCTIONS: ClassVar[dict[str, str]] = {
        SYMPY_FUNCTIONS[name].__name__: entry.numpy
        for name, entry in FUNCTIONS.items()
        if entry.arity == 1 and isinstance(SYMPY_FUNCTIONS[name], type)
    } | {"sign": "np.sign"}

    def __init__(self, names: Mapping[sp.Symbol, str] | None = None, arrays: bool = True) -> None:
        super().__init__({})
        self.names = names or {}
        self.arrays = arrays  # False: the arguments are usually Python numbers (the closed-form module)

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return self.names.get(expr, expr.name)

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        """Positive terms first, so a - a*a prints as a subtraction, not a negation and a sum."""
        terms = sorted(self._as_ordered_terms(expr, order=order), key=lambda t: t.could_extract_minus_sign())
        text = ""
        for term in terms:
            negative = term.could_extract_minus_sign()
            body = self.parenthesize(-term if negative else term, 40)  # 40: the precedence of Add
            text = (f"{text} - {body}" if text else f"-{body}") if negative else (f"{text} + {body}" if text else body)
        return text

    def _print_Function(self, expr: sp.Function) -> str:
        name = type(expr).__name__
        if name in self._FUNCTIONS:
            return f"{self._FUNCTIONS[name]}({', '.join(self._print(a) for a in expr.args)})"
        raise ValueError(f"no NumPy counterpart for {name}")  # pragma: no cover - the formula whitelist prevents it

    def _print__Sigmoid(self, expr: sp.Function) -> str:
        # σ(u) = 1/(1 + e^−u) keeps a tiny σ's relative precision (the tanh form (1 + tanh(u/2))/2 rounds
        # σ(−38) to 0); u is held at −708 (float32: −87) so e^−u cannot overflow (σ there is the dtype's floor).
        # On arrays that is as fast as the tanh form; on Python numbers exp(−logaddexp(0, −u)) is one call.
        arg = expr.args[0]
        if not self.arrays:
            return f"np.exp(-np.logaddexp(0, {self._print(-arg)}))"
        u = self._print(arg)
        array = arg if arg.is_Symbol else -arg if (-arg).is_Symbol else None
        if array is None:  # no array to ask its dtype: the float64 floor
            return f"1/(np.exp(-np.maximum({u}, {SIGMOID_FLOOR!r})) + 1)"
        floor = f"({SIGMOID_FLOOR!r} if {self._print(array)}.dtype == np.float64 else {SIGMOID_FLOOR_32!r})"
        return f"1/(np.exp(-np.maximum({u}, {floor})) + 1)"

    def _print__ExpOfNegAbs(self, expr: sp.Function) -> str:
        # the builtin abs is NumPy's on arrays and plain Python on numbers
        return f"np.exp(-{'np.abs' if self.arrays else 'abs'}({self._print(expr.args[0])}))"

    def _print__IfNegative(self, expr: sp.Function) -> str:
        value, u = expr.args
        return f"{self.parenthesize(value, 60)}**({self._print(u)} < 0)"

    def _print__StableLogCosh(self, expr: sp.Function) -> str:
        arg = expr.args[0]
        u = self._print(-arg if arg.could_extract_minus_sign() else arg)  # log cosh is even
        return f"(np.logaddexp({u}, -({u})) - {float(sp.log(2))!r})"

    def _print__StableSoftplus(self, expr: sp.Function) -> str:
        return f"np.logaddexp(0, {self._print(expr.args[0])})"

    def _print_Heaviside(self, expr: sp.Heaviside) -> str:
        # a comparison is ten times faster than np.heaviside; the bool array multiplies as 0/1
        at_zero = expr.args[1] if len(expr.args) > 1 else sp.Rational(1, 2)
        if at_zero == 0:
            return f"({self._print(expr.args[0])} > 0)"
        if at_zero == 1:
            return f"({self._print(expr.args[0])} >= 0)"
        return f"np.heaviside({self._print(expr.args[0])}, {float(at_zero)!r})"

    def _print_Max(self, expr: sp.Max) -> str:
        return self._fold("np.maximum", expr.args)

    def _print__Largest(self, expr: sp.Function) -> str:
        return self._fold("np.maximum", expr.args)

    def _print_LogSumExp(self, expr: sp.Function) -> str:
        # log(e^a + e^b) = max(a, b) + log1p(e^−|a − b|), NumPy's logaddexp: no overflow, no log(0)
        return self._fold("np.logaddexp", expr.args)

    def _print_Min(self, expr: sp.Min) -> str:
        return self._fold("np.minimum", expr.args)

    def _print__Smallest(self, expr: sp.Function) -> str:
        return self._fold("np.minimum", expr.args)

    def _fold(self, function: str, args: tuple[sp.Basic, ...]) -> str:
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{function}({text}, {self._print(arg)})"
        return text

    def _print_Mul(self, expr: sp.Mul) -> str:
        coeff, rest = expr.as_coeff_Mul()
        if isinstance(coeff, sp.Rational) and not coeff.is_Integer and coeff.q in (2, 4, 8) and abs(coeff.p) < 8:
            # a halving as 0.5*x: a multiply is cheaper than a division in NumPy
            return f"{float(coeff)!r}*{self.parenthesize(rest, 50)}"
        return str(super()._print_Mul(expr))

    def _print_Exp1(self, expr: sp.Basic) -> str:
        return "np.e"

    def _print_Pi(self, expr: sp.Basic) -> str:
        return "np.pi"

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"({expr.p}/{expr.q})"

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        base, exponent = expr.args
        prec = 60  # Pow binds tighter than * and unary minus
        if exponent == -1:
            return f"1/{self.parenthesize(base, prec)}"
        if exponent == sp.Rational(1, 2):
            return f"np.sqrt({self._print(base)})"
        if exponent == -sp.Rational(1, 2):
            return f"1/np.sqrt({self._print(base)})"
        if isinstance(exponent, sp.Integer) and exponent < 0:
            return f"1/{self.parenthesize(base, prec)}**{-int(exponent)}"
        if exponent == 2 and isinstance(base, sp.Symbol):
            # an array-array multiply (no Python-number path); bracketed, as it may sit in a denominator
            return f"({self._print(base)}*{self._print(base)})"
        if isinstance(exponent, sp.Integer):
            return f"{self.parenthesize(base, prec)}**{int(exponent)}"
        if isinstance(exponent, sp.Rational):
            return f"{self.parenthesize(base, prec)}**({exponent.p}/{exponent.q})"
        return f"{self.parenthesize(base, prec)}**{self.parenthesize(exponent, prec)}"


def cse_lines(
    exprs: Sequence[sp.Expr], names: Mapping[sp.Symbol, str], prefix: str, arrays: bool = True
) -> tuple[list[str], list[str]]:
    """(``_t0 = …`` assignment lines of the shared subexpressions, each expression's code using them).

    Temporaries are named ``prefix`` followed by a number; ``names`` spell the expressions' own symbols;
    ``arrays`` as for :func:`numpy_code`.
    """
    # max and min as plain functions: cse rebuilds every node it passes, and sympy's Max compares its
    # arguments each time it is built (4 of the 9 s of a relu net's closed-form module, measured)
    memo: dict[sp.Basic, sp.Basic] = {}
    exprs = [_plain_extrema(e, memo) for e in exprs]
    replacements, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols(prefix), optimizations=None)
    local = dict(names)
    lines = []
    for symbol, value in replacements:
        lines.append(f"{symbol.name} = {numpy_code(value, local, arrays)}")
        local[symbol] = symbol.name
    return lines, [numpy_code(r, local, arrays) for r in reduced]


def numpy_code(expr: sp.Basic, names: Mapping[sp.Symbol, str] | None = None, arrays: bool = True) -> str:
    """``expr`` as a NumPy expression, with overflow-prone patterns rewritten stably.

    ``arrays``: the names hold arrays (σ then picks its form by the array's size).
    """
    # strict: numbers and sympy objects only, never a string to parse
    return str(NumpyCodePrinter(names, arrays).doprint(stabilize(sp.sympify(expr, strict=True))))
