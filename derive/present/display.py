"""Which value is shown: exact numbers stay exact, rounding noise shows as 0."""

from __future__ import annotations

import sympy as sp

from ..chain import evaluate
from ..network import Network


def shown_value(expr: sp.Expr, value: float, point: dict[sp.Symbol, float]) -> float:
    """``value`` for display: a sum that cancels to rounding noise shows as 0.

    0.1 − 0.04 − 0.2 + … = −1.4e−17 in floating point; next to terms of size
    ~0.1 that is noise, and a reader should see 0.
    """
    if not isinstance(expr, sp.Add) or value == 0:
        return value
    terms = [evaluate(term, point) for term in expr.args]
    scale = max((abs(t) for t in terms if t is not None), default=0.0)
    return 0.0 if abs(value) <= 1e-12 * scale else value


def display_point(net: Network, point: dict[sp.Symbol, float]) -> dict[sp.Symbol, float]:
    """The point with every net that cancels to rounding noise shown as 0 (for printing only)."""
    shown = dict(point)
    for symbol, definition in net.net_definitions.items():
        if symbol in shown:
            shown[symbol] = shown_value(definition, shown[symbol], point)
    return shown
