"""The numbers of a network at one point, read by symbol but kept as arrays per layer.

A :class:`Point` is what the compiled passes give: inputs, parameters, targets,
and every layer's nets, outs and δs as NumPy arrays, with E. It reads like a
``dict`` from symbols to floats, so derivations and printers look numbers up by
symbol, while a 784-256-256-10 network never makes 270,000 symbols to hold them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .network import LOSS_SYMBOL, Network, SymbolKind

Array = np.ndarray


@dataclass(frozen=True)
class Arrays:
    """One sample's numbers, by layer (index 0 is the input layer; its weights, biases and δs are unused)."""

    x: Array | None  # the inputs, None when the spec does not give them
    t: Array | None  # the targets, None when the spec does not give them
    weights: list[Array]
    biases: list[Array | None]  # a 0-d array for a shared bias
    nets: list[Array]
    outs: list[Array]
    deltas: list[Array]
    loss: float


class LazyKeys(KeysView[Any]):
    """A mapping's keys, where ``needed <= keys`` asks only about the needed ones (never counts them all)."""

    def __ge__(self, other: Iterable[Any]) -> bool:
        mapping: Mapping[Any, Any] = self._mapping  # type: ignore[attr-defined]  # KeysView's own field
        return all(key in mapping for key in other)


class LazyMapping(Mapping[sp.Symbol, Any]):
    """A mapping that computes its values: truth and key subsets without listing every key."""

    def __bool__(self) -> bool:
        return True

    def keys(self) -> LazyKeys:
        return LazyKeys(self)


class Point(LazyMapping, Mapping[sp.Symbol, float]):
    """symbol → its value at one point: a read-only view of :class:`Arrays`."""

    def __init__(self, network: Network, arrays: Arrays) -> None:
        self.network = network
        self.arrays = arrays

    def __getitem__(self, symbol: sp.Symbol) -> float:
        if symbol == LOSS_SYMBOL:
            return self.arrays.loss
        info = self.network.info.get(getattr(symbol, "name", ""))
        if info is None:
            raise KeyError(symbol)
        a, kind, layer, row = self.arrays, info.kind, info.layer, info.row
        if kind is SymbolKind.WEIGHT:
            assert row is not None and info.col is not None
            return float(a.weights[layer][row, info.col])
        if kind is SymbolKind.BIAS:
            bias = a.biases[layer]
            assert bias is not None
            return float(bias if bias.ndim == 0 else bias[row])
        assert row is not None
        if kind is SymbolKind.INPUT or kind is SymbolKind.TARGET:
            given = a.x if kind is SymbolKind.INPUT else a.t
            if given is None:
                raise KeyError(symbol)
            return float(given[row])
        source = {SymbolKind.NET: a.nets, SymbolKind.OUT: a.outs, SymbolKind.DELTA: a.deltas}[kind]
        return float(source[layer][row])

    def __contains__(self, symbol: object) -> bool:
        try:
            self[symbol]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[sp.Symbol]:
        """Inputs, then each layer's weights, biases and targets, then nets, outs and δs, then E (as dicts did)."""
        net = self.network
        if self.arrays.x is not None:
            yield from net.input_layer.outs
        for layer in net.layers[1:]:
            for row in layer.weights:
                yield from row
            seen = None
            for b in layer.biases:
                if b is not None and b != seen:
                    yield b
                    seen = b
            if self.arrays.t is not None and layer.is_output:
                yield from (n.target for n in layer.neurons if n.target is not None)
        for layer in net.layers[1:]:
            for n in layer.neurons:
                assert n.net is not None and n.delta is not None
                yield from (n.net, n.out, n.delta)
        yield LOSS_SYMBOL

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def largest_net(self) -> float:
        """The largest finite |net| of any layer (0 without any)."""
        largest = 0.0
        for z in self.arrays.nets[1:]:
            finite = np.abs(z[np.isfinite(z)])
            if finite.size:
                largest = max(largest, float(finite.max()))
        return largest
