"""Activations and losses as named formulas: one table, one treatment.

A built-in is nothing but a formula with a name (the table is
:mod:`derive.spec.builtins`): ``sigmoid`` is the text
``1/(1 + exp(-x))`` run through the same safe parser as a user's formula, and
its derivative comes from differentiating that formula. Where the derivative
can be written as a polynomial in the activation's own output (σ' = out(1−out),
tanh' = 1−out²) the rule finds and keeps that textbook form, for any formula.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import mpmath
import sympy as sp

from ..errors import FormulaError
from ..spec.builtins import ACTIVATIONS, LOSSES, SOFTMAX
from .formula import check_cost, parse_formula

X = sp.Symbol("x", real=True)  # the activation's argument (a net)
Y = sp.Symbol("y", real=True)  # the activation's value (an out)
O = sp.Symbol("o", real=True)  # a loss formula's output
T = sp.Symbol("t", real=True)  # a loss formula's target
LOG_O = sp.Symbol("log_o", real=True)  # log o of a softmax output, computed as z − logsumexp(z)
LOG_1MO = sp.Symbol("log_1mo", real=True)  # log(1 − o) of a softmax output: logsumexp_{k≠j} z − logsumexp z

SOFTMAX_FORMULA = ACTIVATIONS[SOFTMAX].formula


def pytorch_heaviside(expr: sp.Expr) -> sp.Expr:
    """Heaviside(x) → Heaviside(x, 0): relu'(0) = 0, as in PyTorch (sympy's is ½)."""
    return expr.replace(
        lambda e: isinstance(e, sp.Heaviside) and e.args[1:] != (sp.S.Zero,),
        lambda e: sp.Heaviside(e.args[0], 0),
    )


def differentiate(expr: sp.Expr, var: sp.Symbol) -> sp.Expr:
    """d expr / d var, with the conventions above."""
    return pytorch_heaviside(sp.diff(expr, var))


@dataclass(frozen=True)
class Activation:
    """An elementwise activation f(x), its derivative f'(x), and f' as g(f(x))."""

    name: str  # the built-in name, or the formula text for a custom one
    formula: str
    f: sp.Expr  # in X
    fprime: sp.Expr  # in X
    fprime_in_out: sp.Expr | None  # in Y, when f'(x) = g(f(x)) for a polynomial g

    @property
    def is_layer_map(self) -> bool:
        return False

    def apply(self, net: sp.Expr) -> sp.Expr:
        return self.f.xreplace({X: net})

    def derivative(self, net: sp.Symbol, out: sp.Symbol) -> sp.Expr:
        """∂out/∂net, in the out symbol when a textbook form exists, else in net."""
        if self.fprime_in_out is not None:
            return self.fprime_in_out.xreplace({Y: out})
        return self.fprime.xreplace({X: net})


@dataclass(frozen=True)
class LayerMap:
    """A map from a whole layer's nets to its outs (softmax): not elementwise."""

    name: str
    formula: str

    @property
    def is_layer_map(self) -> bool:
        return True

    def apply_layer(self, nets: tuple[sp.Expr, ...]) -> tuple[sp.Expr, ...]:
        total = sp.Add(*(sp.exp(z) for z in nets))
        return tuple(sp.exp(z) / total for z in nets)

    def jacobian(self, nets: tuple[sp.Symbol, ...], outs: tuple[sp.Symbol, ...]) -> tuple[tuple[sp.Expr, ...], ...]:
        """J[j][i] = ∂out_j/∂net_i, derived from the formula and written in the outs."""
        return (
            _layer_jacobian(self.name, len(nets))
            .xreplace({**dict(zip(_dummy_nets(len(nets)), nets)), **dict(zip(_dummy_outs(len(nets)), outs))})
            .tolist()
        )


@cache
def _dummy_nets(n: int) -> tuple[sp.Symbol, ...]:
    return tuple(sp.Symbol(f"net{j}", real=True) for j in range(n))


@cache
def _dummy_outs(n: int) -> tuple[sp.Symbol, ...]:
    return tuple(sp.Symbol(f"out{j}", real=True) for j in range(n))


SYMMETRIC_FROM = 3  # a layer map as wide as this shows every kind of Jacobian entry (i = j, i ≠ j, a third output)


@cache
def _layer_jacobian(name: str, n: int) -> sp.ImmutableMatrix:
    """J[j][i] = ∂out_j/∂net_i of an n-wide layer map, each entry written in the outputs.

    A layer map treats its neurons alike (permuting the nets permutes the outs),
    so beyond SYMMETRIC_FROM neurons the entries are those of the 3-wide map
    with the outputs renamed: a diagonal entry in out_j alone, an off-diagonal
    one in out_j and out_i. Where the 3-wide entries name a third output that
    shortcut does not apply, and every entry is derived.
    """
    if n > SYMMETRIC_FROM:
        outs3, outs = _dummy_outs(SYMMETRIC_FROM), _dummy_outs(n)
        diagonal, off = _jacobian_entry(name, SYMMETRIC_FROM, 0, 0), _jacobian_entry(name, SYMMETRIC_FROM, 1, 0)
        if diagonal.free_symbols <= {outs3[0]} and off.free_symbols <= {outs3[0], outs3[1]}:
            return sp.ImmutableMatrix(
                n,
                n,
                lambda j, i: (
                    diagonal.xreplace({outs3[0]: outs[j]})
                    if i == j
                    else off.xreplace({outs3[1]: outs[j], outs3[0]: outs[i]})
                ),
            )
    return _derived_jacobian(name, n)


def _derived_jacobian(name: str, n: int) -> sp.ImmutableMatrix:
    """Every entry derived (see :func:`_jacobian_entry`)."""
    return sp.ImmutableMatrix([[_jacobian_entry(name, n, j, i) for i in range(n)] for j in range(n)])


@cache
def _jacobian_entry(name: str, n: int, j: int, i: int) -> sp.Expr:
    """∂out_j/∂net_i of an n-wide softmax, rewritten in the outputs.

    Substituting net_k = log(p_k·Z) turns every exp(net_k) into p_k·Z; the
    entries then cancel Z, and the identity Σ p_k = 1 (a softmax's outputs sum
    to one) reduces them. Among the rewritings, keep the one that names the
    fewest outputs, then one that names out_j, then the shortest:
    out_j(1 − out_j) and −out_j·out_i.
    """
    nets = _dummy_nets(n)
    outs = _dummy_outs(n)
    p = tuple(sp.Symbol(f"p{k}", positive=True) for k in range(n))
    z = sp.Symbol("Z", positive=True)
    values = LayerMap(name, SOFTMAX_FORMULA).apply_layer(nets)
    total = sp.Add(*p)
    entry = sp.diff(values[j], nets[i]).subs({nets[k]: sp.log(p[k] * z) for k in range(n)})
    entry = sp.factor(sp.cancel(entry)).subs(total, 1)
    candidates = [entry] + [sp.factor(entry.subs(total - p[k], 1 - p[k])) for k in range(n)]
    # a tie keeps the entry's own output: ∂out_j/∂net_j = out_j(1 − out_j), never 1 − out_k … in
    # another output (the δ of cross-entropy then cancels out_j/out_j instead of dividing by it)
    best = min(candidates, key=lambda c: (len(c.free_symbols), p[j] not in c.free_symbols, sp.count_ops(c)))
    return tidy_sign(best.xreplace(dict(zip(p, outs))))


def tidy_sign(expr: sp.Expr) -> sp.Expr:
    """−a·(b − 1) → a·(1 − b): move a leading minus into a difference factor."""
    if isinstance(expr, sp.Mul) and expr.could_extract_minus_sign():
        negated = -expr
        if isinstance(negated, sp.Mul):
            for factor in negated.args:
                if isinstance(factor, sp.Add):
                    return negated.xreplace({factor: -factor})
    return expr


def _polynomial_in_output(f: sp.Expr, fprime: sp.Expr, degree: int = 3) -> sp.Expr | None:
    """g with f'(x) = g(f(x)) for a polynomial g of low degree, or None.

    Fits the coefficients at sample points, rounds them to small rationals and
    accepts g only if it agrees with f' to 25 digits at fresh random points.
    """
    if fprime.has(sp.Heaviside, sp.sign, sp.Abs, sp.Max, sp.Min) or not f.has(X):
        return None
    fn = sp.lambdify(X, f, "mpmath")
    dfn = sp.lambdify(X, fprime, "mpmath")
    rng = random.Random(1234)
    with mpmath.workdps(40):
        try:
            xs = [mpmath.mpf(v) / 7 for v in (-5, -3, -1, 1, 2, 4, 6)][: degree + 1]
            rows = [[fn(x) ** p for p in range(degree + 1)] for x in xs]
            coeffs = mpmath.lu_solve(mpmath.matrix(rows), mpmath.matrix([dfn(x) for x in xs]))
        except (ZeroDivisionError, ValueError, TypeError, ArithmeticError, mpmath.libmp.NoConvergence):
            return None
        if any(isinstance(c, mpmath.mpc) for c in coeffs):
            return None  # f is not real on the sample points (sqrt of a negative, say)
        rational = []
        for c in coeffs:
            r = sp.nsimplify(sp.Float(mpmath.nstr(c, 30), 30), rational=True, tolerance=1e-20)
            if not isinstance(r, sp.Rational) or r.q > 64 or abs(r.p) > 1000:
                return None
            rational.append(r)
        g = sp.Add(*(c * Y**p for p, c in enumerate(rational)))
        gfn = sp.lambdify(Y, g, "mpmath")
        for _ in range(6):
            x = mpmath.mpf(rng.uniform(-3, 3))
            try:
                expected = dfn(x)
                if isinstance(expected, mpmath.mpc) or abs(gfn(fn(x)) - expected) > mpmath.mpf(10) ** -25 * (
                    1 + abs(expected)
                ):
                    return None
            except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
                return None
    factored = tidy_sign(sp.factor(g))
    expanded = sp.expand(g)
    return expanded if sp.count_ops(expanded) < sp.count_ops(factored) else factored


def _step_in_output(f: sp.Expr, fprime: sp.Expr) -> sp.Expr | None:
    """Heaviside(out, 0) when f' is a step that the output alone decides (relu: out > 0 ⟺ net > 0).

    Checked at points on both sides of 0 and at 0 itself.
    """
    if not fprime.has(sp.Heaviside):
        return None
    g = sp.Heaviside(Y, 0)
    for x in (-3, -1, sp.Rational(-1, 7), 0, sp.Rational(1, 7), 1, 3):
        if sp.simplify(fprime.xreplace({X: x}) - g.xreplace({Y: f.xreplace({X: x})})) != 0:
            return None
    return g


@lru_cache(maxsize=64)
def activation(name_or_formula: str, where: str = "activation") -> Activation | LayerMap:
    """The rule for a built-in name or a custom formula in x."""
    builtin = ACTIVATIONS.get(name_or_formula)
    if builtin is not None and builtin.layer_map:
        return LayerMap(name_or_formula, builtin.formula)
    formula = builtin.formula if builtin is not None else name_or_formula
    f = parse_formula(formula, {"x": X}, where)
    fprime = differentiate(f, X)
    check_cost(fprime, f"the derivative of {formula!r}", where)  # the step every derivation and module takes
    return Activation(
        name=name_or_formula,
        formula=formula,
        f=f,
        fprime=fprime,
        fprime_in_out=_polynomial_in_output(f, fprime) or _step_in_output(f, fprime),
    )


@dataclass(frozen=True)
class Loss:
    """E = scale · Σ_k per_output(o_k, t_k)."""

    name: str
    formula: str
    per_output: sp.Expr  # in O and T
    mean_over_outputs: bool

    def total(self, outs: tuple[sp.Symbol, ...], targets: tuple[sp.Symbol, ...]) -> sp.Expr:
        terms = [self.per_output.xreplace({O: o, T: t}) for o, t in zip(outs, targets)]
        total = sp.Add(*terms)
        if self.mean_over_outputs:
            return total / len(outs)
        return total

    def term(self, out: sp.Symbol, target: sp.Symbol, count: int) -> sp.Expr:
        """One output's share E_k of the loss, so that E = Σ_k E_k over ``count`` outputs."""
        term = self.per_output.xreplace({O: out, T: target})
        return term / count if self.mean_over_outputs else term


@lru_cache(maxsize=64)
def loss(kind: str, expr: str, where: str = "loss") -> Loss:
    """The rule for a built-in loss kind or a custom per-output formula in o and t."""
    formula = LOSSES[kind].formula if kind else expr
    per_output = parse_formula(formula, {"o": O, "t": T}, where)
    if not per_output.has(O):
        raise FormulaError(f"{formula!r}: the loss does not depend on the output o", where)
    check_cost(differentiate(per_output, O), f"the derivative of {formula!r}", where)
    return Loss(
        name=kind or "custom",
        formula=formula,
        per_output=per_output,
        mean_over_outputs=bool(kind) and LOSSES[kind].mean_over_outputs,
    )


# --------------------------------------------------------------------------
# a loss folded into the output activation


def _log_depends_on(expr: sp.Expr, symbol: sp.Symbol) -> bool:
    return any(symbol in log.free_symbols for log in expr.atoms(sp.log))


@lru_cache(maxsize=64)
def folded_loss(rule: Loss, act: Activation) -> sp.Expr | None:
    """The per-output loss written in the net x (not in o = f(x)), when that removes every log of o.

    bce over a sigmoid, −t·log σ(x) − (1−t)·log(1−σ(x)), becomes log(1 + eˣ) − t·x: no
    log of a number that rounds to 0, so E stays finite wherever it is (and log(1 + eˣ)
    is then written stably). Any loss formula gets the same treatment: every log of
    an expression in f(x) is brought over a common denominator and split into logs of
    its factors. The fold is kept only when no log of f(x) is left, and only after the
    folded form agrees with the composition at sample points (the log rules used hold
    for positive arguments). Returns an expression in X and T, or None.
    """
    if not _log_depends_on(rule.per_output, O) or not act.f.has(X):
        return None
    composed = rule.per_output.xreplace({O: act.f})

    def split(log: sp.log) -> sp.Expr:
        return sp.expand_log(sp.log(sp.factor(sp.together(log.args[0]))), force=True)

    folded = sp.expand(composed.replace(lambda e: isinstance(e, sp.log) and e.has(X), split))
    remaining = [log for log in folded.atoms(sp.log) if log.has(X)]
    if any(not _one_plus_exp_log(log) for log in remaining):
        return None
    if not _agrees(composed, folded):
        return None
    return folded


def _one_plus_exp_log(log: sp.log) -> bool:
    """log(1 + e^u): softplus, which has a stable form."""
    arg = log.args[0]
    return (
        isinstance(arg, sp.Add)
        and len(arg.args) == 2
        and sp.S.One in arg.args
        and any(isinstance(a, sp.exp) for a in arg.args)
    )


def _agrees(a: sp.Expr, b: sp.Expr) -> bool:
    """a = b at sample points (x, t), to 20 digits."""
    fa = sp.lambdify((X, T), a, "mpmath")
    fb = sp.lambdify((X, T), b, "mpmath")
    with mpmath.workdps(40):
        for x in (-3.5, -1, -0.25, 0.5, 2, 4.5):
            for t in (0, 0.3, 1):
                try:
                    va, vb = fa(mpmath.mpf(x), mpmath.mpf(t)), fb(mpmath.mpf(x), mpmath.mpf(t))
                except (ZeroDivisionError, ValueError, TypeError, ArithmeticError):
                    return False
                if isinstance(va, mpmath.mpc) or isinstance(vb, mpmath.mpc):
                    return False
                if abs(va - vb) > mpmath.mpf(10) ** -20 * (1 + abs(va)):
                    return False
    return True


# --------------------------------------------------------------------------
# a loss with log(1 − o) over a softmax output


class LogSumExp(sp.Function):
    """log(e^u_1 + … + e^u_n), printed without overflow (nested logaddexp); one argument is itself."""

    @classmethod
    def eval(cls, *args: sp.Expr) -> sp.Expr | None:
        if len(args) == 1:
            return args[0]
        return None

    def _eval_evalf(self, prec: int) -> sp.Float | None:
        """The value to ``prec`` bits (derive's exact display values), shifted by the largest argument."""
        values = [a.evalf(mpmath.libmp.prec_to_dps(prec)) for a in self.args]
        if not all(v.is_Number for v in values):
            return None
        with mpmath.workprec(prec + 16):
            xs = [mpmath.mpf(v._to_mpmath(prec + 16)) for v in values]
            top = max(xs)
            result = top + mpmath.log(mpmath.fsum(mpmath.exp(x - top) for x in xs))
        return sp.Float(result, precision=prec)


@dataclass(frozen=True)
class LogParts:
    """A per-output loss as A·log o + B·log(1 − o) + C, with A and B free of o and C free of both logs."""

    a: sp.Expr  # in T
    b: sp.Expr  # in T
    c: sp.Expr  # in O and T


@lru_cache(maxsize=64)
def log_parts(rule: Loss) -> LogParts | None:
    """The loss split around its logs of o and of 1 − o (bce: A = −t, B = t − 1, C = 0), or None.

    Over a softmax these are the logs that round badly: log o_j is z_j − logsumexp(z),
    and log(1 − o_j) = logsumexp_{k≠j}(z) − logsumexp(z), whose δ terms
    o_i/(1 − o_j) = e^(z_i − logsumexp_{k≠j} z) stay at most 1 where 1/(1 − o_j) overflows.
    """
    log_o, log_1mo = sp.Dummy("log_o"), sp.Dummy("log_1mo")
    replaced = rule.per_output.xreplace({sp.log(O): log_o, sp.log(1 - O): log_1mo})
    expanded = sp.expand(replaced, log=False, power_exp=False, multinomial=False)
    a, b = expanded.coeff(log_o), expanded.coeff(log_1mo)
    c = replaced.xreplace({log_o: 0, log_1mo: 0})  # the rest, as the formula writes it
    if any(part.has(O, log_o, log_1mo) for part in (a, b)) or c.has(log_o, log_1mo):
        return None
    if sp.expand(a * log_o + b * log_1mo + c - replaced, log=False) != 0:
        return None  # the logs are not additive (log(1 − o)·o): no split
    return LogParts(a, b, c)


def logsumexp_of_others(nets: Sequence[sp.Expr]) -> list[sp.Expr]:
    """logsumexp_{j≠k}(z) for each k: log(1 − softmax_k(z)) + logsumexp(z)."""
    return [LogSumExp(*(z for j, z in enumerate(nets) if j != k)) for k in range(len(nets))]


def log_one_minus_softmax(nets: Sequence[sp.Expr], rests: Sequence[sp.Expr] | None = None) -> list[sp.Expr]:
    """log(1 − softmax_j(z)) = logsumexp_{k≠j}(z) − logsumexp(z) for each j: finite where 1 − o_j rounds to 0.

    ``rests``: the logsumexp_{k≠j}(z) (symbols standing for them, say), else written out.
    """
    others = logsumexp_of_others(nets) if rests is None else rests
    return [rest - LogSumExp(*nets) for rest in others]


def softmax_deltas(
    parts: LogParts,
    nets: Sequence[sp.Expr],
    outs: Sequence[sp.Expr],
    targets: Sequence[sp.Expr],
    rests: Sequence[sp.Expr] | None = None,
) -> list[sp.Expr]:
    """δ_i = ∂E/∂z_i of a softmax output for E = Σ_k A_k log o_k + B_k log(1 − o_k) + C(o_k), in nets, outs, targets.

    With ∂ log o_k/∂z_i = [i = k] − o_i and ∂ log(1 − o_k)/∂z_i = [i ≠ k]·o_i/(1 − o_k) − o_i,
    δ_i = A_i − o_i ΣA + Σ_{k≠i} B_k e^(z_i − logsumexp_{j≠k} z) − o_i ΣB + g_i o_i − o_i Σ_k g_k o_k,
    g = ∂C/∂o. Every term is bounded where the chain-rule form has 1/(1 − o_k) of an o_k that rounds to 1.
    ``rests``: as for :func:`log_one_minus_softmax`.
    """
    n = len(nets)
    a = [parts.a.xreplace({T: t}) for t in targets]
    b = [parts.b.xreplace({T: t}) for t in targets]
    go = [sp.cancel(differentiate(parts.c, O) * O).xreplace({O: o, T: t}) for o, t in zip(outs, targets)]
    rests = logsumexp_of_others(nets) if rests is None else rests
    total_a, total_b, total_go = sp.Add(*a), sp.Add(*b), sp.Add(*go)
    deltas = []
    for i in range(n):
        paths = sp.Add(*(b[k] * sp.exp(nets[i] - rests[k]) for k in range(n) if k != i))
        deltas.append(a[i] - outs[i] * total_a + paths - outs[i] * total_b + go[i] - outs[i] * total_go)
    return deltas
