"""Which value is shown: exact numbers stay exact, rounding noise shows as 0."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import sympy as sp

from ..core.chain import evaluate
from ..core.network import Network, SymbolKind
from ..core.point import LazyMapping
from ..core.policy import POLICY
from ..core.rules import Activation, X


def shown_value(expr: sp.Expr, value: float, point: Mapping[sp.Symbol, float]) -> float:
    """``value`` for display: a sum that cancels to rounding noise shows as 0.

    0.1 − 0.04 − 0.2 + … = −1.4e−17 in floating point; next to terms of size
    ~0.1 that is noise, and a reader should see 0.
    """
    if not isinstance(expr, sp.Add) or value == 0:
        return value
    terms = [evaluate(term, point) for term in expr.args]
    scale = max((abs(t) for t in terms if t is not None), default=0.0)
    return 0.0 if POLICY.is_noise(value, scale) else value


def display_point(net: Network, point: Mapping[sp.Symbol, float]) -> Mapping[sp.Symbol, float]:
    """The point with every net that cancels to rounding noise shown as 0 (for printing only).

    Each net is looked at when it is first read (a lecture of a big network shows a few of them),
    from the layer's floats (Σ w·out + b) rather than its sympy sum: a 784-input net is 784 terms.
    """
    return _DisplayPoint(net, point)


class _DisplayPoint(LazyMapping, Mapping[sp.Symbol, float]):
    def __init__(self, net: Network, point: Mapping[sp.Symbol, float]) -> None:
        self.net = net
        self.point = point
        self._shown: dict[sp.Symbol, float] = {}

    def __getitem__(self, symbol: sp.Symbol) -> float:
        if symbol in self._shown:
            return self._shown[symbol]
        value = self.point[symbol]
        info = self.net.info.get(getattr(symbol, "name", ""))
        if info is not None and info.kind is SymbolKind.NET and value != 0 and info.row is not None:
            layer = self.net.layers[info.layer]
            prev = self.net.layers[layer.index - 1]
            terms = layer.kind.net_terms(layer, prev.outs, info.row, self.point.__getitem__)
            scale = max((abs(t) for t in terms), default=0.0)
            if POLICY.is_noise(value, scale):
                value = 0.0
            self._shown[symbol] = value
        elif info is not None and info.kind is SymbolKind.OUT and info.layer > 0 and info.row is not None:
            # the out of a net shown as 0 is f(0) (tanh of rounding noise is noise, shown as tanh(0) = 0)
            layer = self.net.layers[info.layer]
            net = layer.neurons[info.row].net
            if isinstance(layer.rule, Activation) and net is not None and self.point[net] != 0 and self[net] == 0:
                at_zero = layer.rule.f.subs(X, 0)
                if at_zero.is_number and at_zero.is_finite:
                    value = float(at_zero)
            self._shown[symbol] = value
        return value

    def __iter__(self) -> Iterator[sp.Symbol]:
        return iter(self.point)

    def __len__(self) -> int:
        return len(self.point)
