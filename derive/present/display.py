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
    """The point with every net that cancels to rounding noise shown as 0 (for printing only).

    Read from the layers (Σ w·out + b) rather than from the nets' sympy sums:
    a 784-30-10 network has 23,550 such terms, and evaluating them through
    sympy took 20 s where plain floats take milliseconds.
    """
    shown = dict(point)
    for layer in net.layers[1:]:
        prev = net.layers[layer.index - 1]
        for n, row, bias in zip(layer.neurons, layer.weights, layer.biases):
            if n.net is None or n.net not in shown or shown[n.net] == 0:
                continue
            terms = [point[w] * point[o] for w, o in zip(row, prev.outs)]
            if bias is not None:
                terms.append(point[bias])
            scale = max((abs(t) for t in terms), default=0.0)
            if abs(shown[n.net]) <= 1e-12 * scale:
                shown[n.net] = 0.0
    return shown
