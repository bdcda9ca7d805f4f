"""The number policy, in one home: which numbers are float64, which are exact, and how far a float is trusted.

- Every float64 number (the CLI's, training's, ``check X@N``'s) comes from the generated module.
- The digits derive *shows* come from an exact pass (:class:`derive.core.chain.ExactPoint`): sympy Floats
  with as many digits as the largest net asks for, plus :attr:`NumberPolicy.exact_digits`, and an
  exponent without limit. A shown value is a :data:`Number`: a float, or a sympy Float where float64
  would turn it into inf or 0.
- A float64 result is trusted to a relative :attr:`NumberPolicy.noise`: a sum that cancels below it is
  shown as 0. Claims are judged from the exact pass, never with a slack (``derive.check.exact``).
- A number a spec gives is the decimal written there, not the float nearest it: 0.05 is 1/20
  (:func:`written`). float64 computes with the nearest float; the exact pass with the decimal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias

import mpmath
import sympy as sp
from mpmath.libmp import dps_to_prec, from_float, round_nearest

if TYPE_CHECKING:
    from ..spec.reading import Spec

# A shown value: a float, or a sympy Float when it lies beyond float64's range
# (∂E/∂out = −1/out with out = e^−2000 is −e^2000: a number, kept and shown).
Number: TypeAlias = "float | sp.Float"

SMALLEST_NORMAL = 2.2250738585072014e-308


@dataclass(frozen=True)
class NumberPolicy:
    """How derive treats numbers (one instance, :data:`POLICY`)."""

    noise: float = 1e-12  # relative trust in a float64 value computed through a network
    exact_digits: int = 30  # digits of a shown exact value, beyond those the nets' sizes ask for
    max_exact_digits: int = 4000  # enough for 1 − σ(net) with |net| up to ~4500

    def digits_for(self, largest_net: float) -> int:
        """Digits an exact pass carries when the largest |net| is ``largest_net`` (1 − σ(z) needs ~z/ln 10)."""
        need = self.exact_digits + 2 * largest_net / math.log(10)  # inf for a net near float64's limit
        return math.ceil(need) if need < self.max_exact_digits else self.max_exact_digits

    def is_noise(self, value: float, scale: float) -> bool:
        """Whether a float that should be a sum of terms of size ``scale`` is rounding noise around 0."""
        return abs(value) <= self.noise * scale

    def slack(self, value: Decimal) -> Decimal:
        """How far either side of a computed float64 ``value`` the exact value may lie (for judging claims)."""
        return abs(value) * Decimal(repr(self.noise))


POLICY = NumberPolicy()


def written(value: float | Decimal) -> Decimal:
    """The decimal a spec's number stands for: the shortest that reads back as the same float.

    That is the decimal as written whenever it has at most 15 significant digits (0.05, not
    0.05000000000000000277…); a float that no one wrote (a drawn weight, a trained one) is read the same way.
    """
    if isinstance(value, Decimal):
        return value
    text = getattr(value, "text", None)  # a WrittenFloat: the spec's own longer decimal
    return Decimal(text) if text is not None else Decimal(repr(float(value)))


def written_numbers(spec: Spec) -> dict[str, float]:
    """The spec's numbers written with more digits than their floats keep, by symbol name (usually none)."""
    found: dict[str, float] = {}
    first, last = spec.layers[0], spec.layers[-1]
    for rows, names in ((first.samples, first.names), (last.target_samples, last.target_names)):
        for row in rows or ():
            for name, v in zip(names, row):
                if hasattr(v, "text"):
                    found[name] = v
    for layer in spec.layers[1:]:
        for vrow, nrow in zip(layer.weights or (), layer.weight_names):
            for name, v in zip(nrow, vrow):
                if hasattr(v, "text"):
                    found[name] = v
        for name, v in zip(layer.bias.names, layer.bias.values):
            if hasattr(v, "text"):
                found[name] = v
    return found


def decimal_float(value: float | Decimal | sp.Float, digits: int) -> sp.Float:
    """A spec's number as a sympy Float of ``digits`` digits, from its decimal (:func:`written`)."""
    if isinstance(value, sp.Float):
        return value if value._prec >= digits * 3.33 else sp.Float(value, digits)
    # mpmath reads the decimal straight into binary (a third of sympy's time: 784·30 weights a layer)
    prec = mpmath.libmp.dps_to_prec(digits)
    return sp.Float._new(mpmath.libmp.from_str(str(written(value)), prec, mpmath.libmp.round_nearest), prec)


def decimal_constants(expr: sp.Expr) -> sp.Expr:
    """An expression with every Float constant (0.01 of a leaky relu) replaced by the decimal it was written as."""
    floats = [f for f in expr.atoms(sp.Float) if f._prec <= 53]  # a float's 53 bits: a constant as written
    if not floats:
        return expr
    return expr.xreplace({f: sp.Rational(str(written(float(f)))) for f in floats})


def exact(value: Number) -> sp.Float:
    """A number as a sympy Float holding it exactly (17 digits hold a float)."""
    return value if isinstance(value, sp.Float) else float_at(value, 17)


def float_at(value: float, digits: int) -> sp.Float:
    """A float as a sympy Float of ``digits`` digits, made from its bits (no decimal string in between)."""
    prec = dps_to_prec(digits)
    return sp.Float._new(from_float(float(value), prec, round_nearest), prec, zero=False)


def to_number(value: sp.Expr, keep: bool = False) -> Number | None:
    """A float, or the sympy Float itself when float64 would turn it into inf or 0; None for no number.

    ``keep``: every digit of a sympy Float is kept (``derive grad --digits 50``).
    """
    if not value.is_Number or value in (sp.nan, sp.zoo, sp.oo, -sp.oo) or value.is_finite is False:
        return None  # is_finite: a Float nan or inf, which the comparisons above do not catch
    if keep and isinstance(value, sp.Float):
        return value
    as_float = float(value)
    if not value.is_zero and (math.isinf(as_float) or abs(as_float) < SMALLEST_NORMAL):
        return sp.Float(value, 17)
    return as_float


KEPT_BITS = 120  # a sympy Float this precise was kept for its digits (to_number's keep), not for its range


def kept(*values: Number | None) -> bool:
    """Whether a value computed from these keeps its digits: one of them is a kept sympy Float."""
    return any(isinstance(v, sp.Float) and v._prec >= KEPT_BITS for v in values)


def as_float(value: Number | None) -> float | None:
    """For JSON and other float-only consumers: a value beyond float64's range becomes ±inf or 0."""
    return None if value is None else float(value)


def reduce_exact(values: Sequence[Number | None], reduction: str) -> Number | None:
    """The batch's value from its samples' exact values: their mean or sum (None if any is None)."""
    if any(v is None for v in values):
        return None
    total = sp.Add(*(exact(v) for v in values if v is not None))
    if reduction == "mean":
        total = total / len(values)
    return to_number(sp.sympify(total, strict=True))
