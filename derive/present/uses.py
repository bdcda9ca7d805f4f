"""A shared parameter's gradient as the sum over its uses: a kernel weight at every position of its map.

Up to :data:`MAX_LISTED_USES` uses are listed one by one (each use's δ and input, symbolically and with
numbers); beyond, the uses are folded into maps, as paths are folded into δ form: the δ map of the channel,
the map of what the weight multiplies at each position, and their sum of products. Only formatting here:
the uses come from :mod:`derive.core.uses`, the numbers from the derivation's exact point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..core.chain import Derivation
from ..core.network import Network
from ..core.policy import Number, as_float
from ..core.uses import SharedUses
from .numbers import format_number

MAX_LISTED_USES = 16  # as many as paths are listed (derive.core.chain.MAX_PATHS); beyond: the δ-map form
MAP_DIGITS = 4  # significant digits of a map's entries (the JSON has every digit)
BLANK = "·"  # a position the parameter does not use (its window lies on the zero padding)


@dataclass(frozen=True)
class UseMaps:
    """A shared parameter's uses on its map grid, with numbers: what the δ-map form shows."""

    uses: SharedUses
    deltas: tuple[Number | None, ...]  # per (channel, position): δ of the net fed there; None where not a use
    factors: tuple[Number | None, ...]  # per (channel, position): what the parameter multiplies there
    nonzero: int  # uses whose product δ · factor is not 0


def use_maps(d: Derivation, uses: SharedUses) -> UseMaps:
    """The δ and factor of every use, from the derivation's exact point (None without numbers)."""
    point: Mapping[sp.Symbol, Number] = d.point or {}
    network = d.network
    deltas: list[Number | None] = []
    factors: list[Number | None] = []
    nonzero = 0
    for net, factor in zip(uses.nets, uses.factors):
        if net is None or factor is None:
            deltas.append(None)
            factors.append(None)
            continue
        delta = network.neuron_of(net).delta
        dv = point.get(delta) if delta is not None else None
        fv: Number | None = point.get(factor) if isinstance(factor, sp.Symbol) else as_float(factor)
        deltas.append(dv)
        factors.append(fv)
        if dv is not None and fv is not None and float(dv) != 0 and float(fv) != 0:  # a sympy 0.0 is not == 0
            nonzero += 1
    return UseMaps(uses, tuple(deltas), tuple(factors), nonzero)


def _grid_name(uses: SharedUses) -> str:
    return "×".join(map(str, uses.grid))


def describe(uses: SharedUses, d: Derivation) -> list[str]:
    """What the parameter is and why its gradient is a sum over its uses (plain text lines)."""
    q = uses.parameter.name
    layer = d.network.layers[uses.layer]
    number = layer.number
    if uses.steps:
        return _describe_steps(uses, d)
    if uses.offset:
        channel, *where = uses.offset
        at = f"row {where[0] + 1}, column {where[1] + 1}" if len(where) == 2 else f"position {where[0] + 1}"
        what = (
            f"{q} is the kernel weight at {at} of output channel {uses.channels[0] + 1}'s kernel over input "
            f"channel {channel + 1}. The kernel slides over the input, so this one weight multiplies a different "
            f"input at each position of map {uses.channels[0] + 1} of layer {number} ({_grid_name(uses)} positions)"
        )
    elif len(uses.channels) > 1:
        what = f"{q} is one bias shared by every position of every map of layer {number}"
    else:
        what = f"{q} is the bias of map {uses.channels[0] + 1} of layer {number}, added at each of its positions"
    count = uses.count
    skipped = len(uses.channels) * uses.positions - count
    tail = f"; {skipped} windows lie on the zero padding there, and are not uses" if skipped else ""
    nets = [n for n in uses.nets if n is not None]
    first = nets[0].name
    factor = next(f for f in uses.factors if f is not None)
    product = "δ" if factor == 1 else "δ · (the input it multiplies)"
    return [
        f"{what}{tail}.",
        f"So ∂E/∂{q} is a sum over its {count} uses: each use's net (z at that position, e.g. {first}) "
        f"adds {q}, and contributes ∂E/∂z · ∂z/∂{q} = {product}.",
    ]


def _describe_steps(uses: SharedUses, d: Derivation) -> list[str]:
    """An rnn's parameter: used at every time step, so its gradient is a sum over time."""
    q = uses.parameter.name
    layer = d.network.layers[uses.layer]
    l, steps = layer.number, uses.grid[0]
    unit = uses.channels[0] + 1
    if uses.recurrent is not None:
        what = (
            f"{q} is the recurrent weight into unit {unit} from the previous state's unit {uses.recurrent + 1}: "
            f"z{l}_{unit}_t adds {q} · (a{l}_{uses.recurrent + 1} at step t − 1) at every step t = 2 … {steps} "
            "(at t = 1 the previous state is h_0 = 0)"
        )
        factor = f"a{l}_{uses.recurrent + 1} at the step before"
    elif uses.feature is not None:
        what = (
            f"{q} is the input weight into unit {unit} from feature {uses.feature + 1}: z{l}_{unit}_t adds "
            f"{q} · x{uses.feature + 1}_t at every step t = 1 … {steps}"
        )
        factor = f"x{uses.feature + 1} at that step"
    elif len(uses.channels) > 1:
        what = f"{q} is one bias shared by every unit at every step"
        factor = "1"
    else:
        what = f"{q} is unit {unit}'s bias, added at every step t = 1 … {steps}"
        factor = "1"
    product = "δ" if factor == "1" else f"δ · ({factor})"
    return [
        f"{what}.",
        f"So ∂E/∂{q} is a sum over time, one term per step: ∂E/∂z_t · ∂z_t/∂{q} = {product}. Each δ_t comes "
        f"from the step after it (BPTT): δ_t = f′(z_t) · (Σ_j u_j· δ_(t+1),j + ∂E/∂h_t), and only the last "
        f"step, t = {steps}, gets ∂E/∂h from the layer after.",
    ]


def map_rows(values: Sequence[Number | None], grid: tuple[int, ...], digits: int = MAP_DIGITS) -> list[list[str]]:
    """A map's entries as text, a row per grid row (a 1-D map: one row)."""
    columns = grid[-1]
    cells = [BLANK if v is None else format_number(v, digits) for v in values]
    return [cells[i : i + columns] for i in range(0, len(cells), columns)]


def table_lines(
    rows: list[list[str]], width: int | None, indent: str = "    ", row_labels: tuple[str, ...] = ()
) -> list[str]:
    """A table of a map, rows and columns numbered from 1 (or rows labelled), cut into blocks that fit ``width``."""
    if not rows:
        return []
    cell = max(len(c) for row in rows for c in row)
    names = list(row_labels) or [str(r + 1) for r in range(len(rows))]
    label = max(len(n) for n in names)
    per_block = len(rows[0])
    if width is not None:
        per_block = max(1, (width - len(indent) - label - 2) // (cell + 1))
    lines: list[str] = []
    for start in range(0, len(rows[0]), per_block):
        stop = min(start + per_block, len(rows[0]))
        head = " " * (label + 2) + " ".join(str(c + 1).rjust(cell) for c in range(start, stop))
        lines.append(indent + head.rstrip())
        for r, row in enumerate(rows):
            lines.append(indent + f"{names[r].rjust(label)}: " + " ".join(v.rjust(cell) for v in row[start:stop]))
        if stop < len(rows[0]):
            lines.append("")
    return lines


def folded_lines(d: Derivation, maps: UseMaps, digits: int, width: int | None) -> list[str]:
    """The δ-map form: the δ map(s), the map of what the parameter multiplies, and the sum of their products."""
    lines = [f"more than {MAX_LISTED_USES} uses: folded into maps (the δ-map form)."]
    lines += table_block(d, maps, width)
    return lines + total_lines(d, maps, digits)


def table_block(d: Derivation, maps: UseMaps, width: int | None) -> list[str]:
    """The δ map of each channel the parameter feeds, and beside it the map of what the parameter multiplies."""
    uses = maps.uses
    q = uses.parameter.name
    layer = d.network.layers[uses.layer]
    lines = [f"  entries to {MAP_DIGITS} significant digits; {BLANK}: not a use"]
    if uses.steps:
        return lines + _step_tables(d, maps, width)
    per_channel = uses.positions
    multiplied = any(f is not None and f != 1 for f in uses.factors)
    for i, channel in enumerate(uses.channels):
        chunk = slice(i * per_channel, (i + 1) * per_channel)
        lines.append("")
        lines.append(f"  δ{layer.number} of map {channel + 1}: ∂E/∂z{layer.number}_{channel + 1}_… at each position")
        lines.extend(table_lines(map_rows(maps.deltas[chunk], uses.grid), width))
        if multiplied:
            lines.append("")
            lines.append(f"  what {q} multiplies at each position (∂z/∂{q}: the input under its kernel entry)")
            lines.extend(table_lines(map_rows(maps.factors[chunk], uses.grid), width))
    return lines


def _step_tables(d: Derivation, maps: UseMaps, width: int | None) -> list[str]:
    """An rnn parameter's δ and factor at each step (columns t = 1 … T), a row per unit."""
    uses = maps.uses
    rows_d = map_rows(maps.deltas, (len(uses.channels) * uses.grid[0],))[0]
    rows_f = map_rows(maps.factors, (len(uses.channels) * uses.grid[0],))[0]
    steps = uses.grid[0]
    lines = [""]
    for i, unit in enumerate(uses.channels):
        lines.append(f"  unit {unit + 1}, step t = 1 … {steps}:")
        lines.extend(
            table_lines(
                [rows_d[i * steps : (i + 1) * steps], rows_f[i * steps : (i + 1) * steps]], width, row_labels=("δ", "×")
            )
        )
    return lines


def total_lines(d: Derivation, maps: UseMaps, digits: int) -> list[str]:
    """∂E/∂q as the sum over the maps, how many products are 0 and why, and its value."""
    uses = maps.uses
    q = uses.parameter.name
    multiplied = any(f is not None and f != 1 for f in uses.factors)
    zero = uses.count - maps.nonzero
    lines = [""]
    if multiplied:
        lines.append(f"  ∂E/∂{q} = Σ over the positions of δ · input, entry by entry")
    else:
        lines.append(f"  ∂E/∂{q} = Σ over the positions of δ")
    why = zero_reasons(d, uses)
    if zero:
        lines.append(f"    {zero} of the {uses.count} products are 0{why}")
    value = "?" if d.value is None else format_number(d.value, digits)
    lines.append(f"  ∂E/∂{q} = {value}")
    return lines


def zero_reasons(d: Derivation, uses: SharedUses) -> str:
    """Why δ is 0 at some uses, from the layers after the parameter's (relu at rest, a max pool's losers)."""
    network = d.network
    layer = network.layers[uses.layer]
    reasons = []
    if layer.spec.activation in ("relu", "leaky_relu") or "max(" in layer.spec.activation:
        reasons.append("the relu is at rest (z ≤ 0: f′ = 0)")
    if uses.layer + 1 < len(network.layers) and network.layers[uses.layer + 1].spec.kind.startswith("maxpool"):
        reasons.append("the max pool after it passed on another entry of the window")
    return ": δ is 0 where " + ", or where ".join(reasons) if reasons else ""


def uses_json(maps: UseMaps) -> dict[str, Any]:
    """The uses as JSON: their count, the grid, and the δ and factor maps (nested like the grid, per channel)."""
    uses = maps.uses

    def nest(values: Sequence[Number | None]) -> list[Any]:
        per = uses.positions
        result = []
        for i in range(len(uses.channels)):
            flat = [None if v is None else as_float(v) for v in values[i * per : (i + 1) * per]]
            cols = uses.grid[-1]
            rows = [flat[r : r + cols] for r in range(0, len(flat), cols)]
            result.append(rows if len(uses.grid) == 2 else flat)
        return result

    return {
        "count": uses.count,
        "nonzero": maps.nonzero,
        "grid": list(uses.grid),
        "channels": [c + 1 for c in uses.channels],
        "kernel_entry": [o + 1 for o in uses.offset] if uses.offset else None,
        "delta_maps": nest(maps.deltas),
        "factor_maps": nest(maps.factors),
    }


def listed(uses: SharedUses) -> bool:
    """Whether the uses are few enough to list one by one."""
    return uses.count <= MAX_LISTED_USES


def zero_delta_note(network: Network, layer: int) -> str:
    """Why a δ of layer ``layer`` is 0 by its very definition: no window of the max pool after it passes it on."""
    if layer + 1 < len(network.layers) and network.layers[layer + 1].spec.kind.startswith("maxpool"):
        return "0: the max pool after it passed on another entry of every window holding this position"
    return ""
