"""Which value is shown: exact numbers stay exact, rounding noise shows as 0."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

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


class ExactWhereLost(LazyMapping, Mapping[sp.Symbol, float]):
    """A shown point with the exact point's numbers wherever floats lost them (a saturated network).

    σ(61) is 1 in floats, so out(1 − out) is 0 and every δ below it 0; the exact point keeps
    3.2e−27. A δ that is 0 in floats but not exactly is read from the exact point. An out that is ±1
    in floats but not exactly is still read as that float, and :meth:`offset` says how far it is from
    ±1, so a printer writes 1 − 3.2×10⁻²⁷ instead of a 1 that makes 1 − out read 1 − 1.
    """

    def __init__(self, net: Network, shown: Mapping[sp.Symbol, float], exact: Mapping[sp.Symbol, Any] | None) -> None:
        self.net = net
        self.shown = shown
        self.exact = exact
        self._offsets: dict[sp.Symbol, tuple[int, float] | None] = {}

    def _exact_float(self, symbol: sp.Symbol) -> float | None:
        if self.exact is None:
            return None
        try:
            value = self.exact[symbol]
        except KeyError:
            return None
        if value is None or not getattr(value, "is_Number", True):
            return None
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            return None
        return as_float if math.isfinite(as_float) else None

    def __getitem__(self, symbol: sp.Symbol) -> float:
        value = self.shown[symbol]
        if value == 0:
            info = self.net.info.get(getattr(symbol, "name", ""))
            if info is not None and info.kind is SymbolKind.DELTA:
                exact = self._exact_float(symbol)
                if exact:
                    return exact
        return value

    def offset(self, symbol: sp.Symbol) -> tuple[int, float] | None:
        """(±1, how far the exact out is from it) for an out that is exactly ±1 in floats but not exactly; else None."""
        if symbol in self._offsets:
            return self._offsets[symbol]
        found: tuple[int, float] | None = None
        info = self.net.info.get(getattr(symbol, "name", ""))
        if info is not None and info.kind is SymbolKind.OUT and info.layer > 0 and self.exact is not None:
            value = self.shown[symbol]
            if value in (1.0, -1.0):
                exact = self.exact.get(symbol) if hasattr(self.exact, "get") else None
                if exact is not None and getattr(exact, "is_Number", False):
                    gap = float(exact - int(value))
                    if gap != 0 and math.isfinite(gap):
                        found = (int(value), gap)
        self._offsets[symbol] = found
        return found

    def __iter__(self) -> Iterator[sp.Symbol]:
        return iter(self.shown)

    def __len__(self) -> int:
        return len(self.shown)
