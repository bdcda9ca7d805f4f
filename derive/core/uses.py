"""A parameter shared across the positions of a map: a kernel weight, or a channel's bias.

Its gradient is the sum over its uses, ∂E/∂w = Σ_p δ_p · (what w multiplies at p), the same idea as a
shared bias or a sum over paths. This module lays the uses out on the map's grid, so they can be shown
as a δ map beside the inputs they multiply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from ..spec.reading import BiasKind
from .layers import Recurrent, windows
from .network import Network, SymbolKind


@dataclass(frozen=True)
class SharedUses:
    """Where a conv layer's parameter is used: one entry per position of its output map (channel first)."""

    parameter: sp.Symbol
    layer: int  # index of the conv layer in Network.layers
    channels: tuple[int, ...]  # the output channels it feeds (a shared bias: every one), from 0
    grid: tuple[int, ...]  # the map's sides: (rows, columns), or (length,) for 1-D
    nets: tuple[sp.Symbol | None, ...]  # per (channel, position): the net it feeds there; None: no use (padding)
    factors: tuple[sp.Expr | None, ...]  # per (channel, position): ∂net/∂parameter (the input read, or 1)
    offset: tuple[int, ...] = ()  # a kernel weight: (input channel, row, column) of its kernel entry, from 0
    steps: bool = False  # an rnn's parameter: the grid is the time steps, a channel is a unit
    recurrent: int | None = None  # an rnn's recurrent weight u_jk: k, the previous state's unit (from 0)
    feature: int | None = None  # an rnn's input weight w_jk: k, the input feature (from 0)

    @property
    def count(self) -> int:
        """How many uses: the nets it feeds."""
        return sum(n is not None for n in self.nets)

    @property
    def positions(self) -> int:
        return math.prod(self.grid)


def shared_uses(net: Network, quantity: sp.Symbol) -> SharedUses | None:
    """The uses of a conv layer's kernel weight or bias laid out on its maps; None for any other quantity."""
    info = net.info.get(quantity.name)
    if info is None or info.kind not in (SymbolKind.WEIGHT, SymbolKind.BIAS) or info.layer == 0:
        return None
    layer = net.layers[info.layer]
    if isinstance(layer.kind, Recurrent):
        return _steps(net, info.layer, quantity, info.kind, info.row, info.col)
    geometry = layer.spec.geometry
    if geometry is None:
        return None
    table = windows(geometry)
    prev = net.layers[info.layer - 1].outs
    grid = geometry.out_shape[1:]
    if info.kind is SymbolKind.WEIGHT:
        assert info.row is not None and info.col is not None
        channels: tuple[int, ...] = (info.row,)
        uses = layer.kind.weight_uses(layer, prev, info.row, info.col)
        channel, entry = divmod(info.col, table.entries)
        offset: tuple[int, ...] = (
            (channel, *divmod(entry, geometry.kernel[-1])) if geometry.dims == 2 else (channel, entry)
        )
    else:
        shared = layer.spec.bias.kind is BiasKind.SHARED
        channels = tuple(range(geometry.out_shape[0])) if shared else (info.row or 0,)
        uses = layer.kind.bias_uses(layer, None if shared else info.row)
        offset = ()
    base = channels[0] * table.positions
    nets: list[sp.Symbol | None] = [None] * (len(channels) * table.positions)
    factors: list[sp.Expr | None] = [None] * len(nets)
    for use in uses:
        nets[use.row - base] = layer.nets[use.row]
        factors[use.row - base] = use.factor
    return SharedUses(quantity, info.layer, channels, grid, tuple(nets), tuple(factors), offset)


def _steps(
    net: Network, index: int, quantity: sp.Symbol, kind: SymbolKind, row: int | None, col: int | None
) -> SharedUses:
    """An rnn's weight or bias on the time axis: one entry per step for its unit (a shared bias: every unit)."""
    layer = net.layers[index]
    kind_ = layer.kind
    assert isinstance(kind_, Recurrent)
    steps, units, features = kind_.sizes(layer.spec)
    prev = net.layers[index - 1].exposed
    shared = kind is SymbolKind.BIAS and row is None
    channels = tuple(range(units)) if shared else (row or 0,)
    if kind is SymbolKind.WEIGHT:
        assert row is not None and col is not None
        uses = kind_.weight_uses(layer, prev, row, col)
    else:
        uses = kind_.bias_uses(layer, row)
    # entries by (unit, step): neuron n = t·H + j
    nets: list[sp.Symbol | None] = [None] * (len(channels) * steps)
    factors: list[sp.Expr | None] = [None] * len(nets)
    for use in uses:
        t, j = divmod(use.row, units)
        slot = (j - channels[0]) * steps + t
        nets[slot] = layer.nets[use.row]
        factors[slot] = use.factor
    recurrent = col - features if kind is SymbolKind.WEIGHT and col is not None and col >= features else None
    feature = col if kind is SymbolKind.WEIGHT and col is not None and col < features else None
    return SharedUses(
        quantity,
        index,
        channels,
        (steps,),
        tuple(nets),
        tuple(factors),
        steps=True,
        recurrent=recurrent,
        feature=feature,
    )
