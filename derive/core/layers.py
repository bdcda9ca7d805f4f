"""Layer kinds: each owns its maths in one place, as micrograd keeps an op's forward rule beside its derivative.

A kind says how a layer's nets are made from the previous layer's outs and its parameters:

- its symbolic net definitions (what :class:`derive.core.network.Network` writes and differentiates);
- its edges in the graph, a parameter's *uses*: a weight used once, a shared bias once per neuron;
- what flows back to the previous layer's outs (the Σ δ·w of BP2);
- its exact evaluation, for the displayed digits (:class:`derive.core.chain.ExactPoint`);
- its lines of generated code (:class:`derive.codegen.modules.VectorModule`), as templates of real code.

The activation is not part of the kind: every kind's nets go through the layer's activation rule.
Dense is the first kind; a convolution and a pooling are others (a shared kernel weight is a weight with
many uses, as a shared bias is); a recurrence will be another class here, not branches elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
import sympy as sp
from mpmath.libmp import dps_to_prec, from_int, from_man_exp, mpf_div, round_nearest

from ..spec.maps import CONV_KINDS, POOL_KINDS
from ..spec.reading import BiasKind, Geometry, LayerSpec

Dyadic = tuple[int, int]  # m · 2**e, exactly


@dataclass(frozen=True)
class Use:
    """One use of a parameter or an out: it feeds net ``row`` of the layer, with local derivative ``factor``."""

    row: int
    factor: sp.Expr


class LayerView(Protocol):
    """What a kind reads of a network's layer (:class:`derive.core.network.Layer`)."""

    @property
    def spec(self) -> LayerSpec: ...
    @property
    def size(self) -> int: ...
    @property
    def weights(self) -> Sequence[Sequence[sp.Symbol]]: ...
    @property
    def biases(self) -> tuple[sp.Symbol | None, ...]: ...
    @property
    def deltas(self) -> tuple[sp.Symbol, ...]: ...
    @property
    def outs(self) -> tuple[sp.Symbol, ...]: ...
    @property
    def routes(self) -> Sequence[int]: ...


class Dense:
    """A fully connected layer: net_j = Σ_k w_jk · out_k + b_j (Nielsen's z = W a + b)."""

    name = "dense"

    # -- the maths -----------------------------------------------------------------

    def net(self, layer: LayerView, outs: Sequence[sp.Expr], j: int) -> sp.Expr:
        """net_j from row j of the weights, the previous layer's outs and the neuron's bias."""
        total = sp.Add(*(w * o for w, o in zip(layer.weights[j], outs)))
        bias = layer.biases[j]
        return total + bias if bias is not None else total

    def products(self, layer: LayerView, outs: Sequence[sp.Expr], j: int) -> list[tuple[sp.Expr, sp.Expr]]:
        """net_j's products as (weight, out) pairs, without building the sum (:meth:`net` adds them up)."""
        return list(zip(layer.weights[j], outs))

    def weight_uses(self, layer: LayerView, outs: Sequence[sp.Expr], row: int, col: int) -> list[Use]:
        """w_jk is used once: in net_j, where ∂net_j/∂w_jk = out_k."""
        return [Use(row, outs[col])]

    def bias_index(self, layer: LayerSpec, j: int) -> int:
        """Which of the layer's bias names neuron j adds (one per neuron)."""
        return j

    def bias_uses(self, layer: LayerView, row: int | None) -> list[Use]:
        """A neuron's bias feeds its own net; a shared bias feeds every net of the layer (one use each)."""
        rows = range(layer.size) if row is None else (row,)
        return [Use(j, sp.S.One) for j in rows]

    def out_uses(self, layer: LayerView, k: int) -> list[Use]:
        """out_k of the previous layer feeds every net j, with ∂net_j/∂out_k = w_jk."""
        return [Use(j, row[k]) for j, row in enumerate(layer.weights)]

    def out_heads(self, layer: LayerView, k: int) -> range:
        """The nets out_k of the previous layer feeds (:meth:`out_uses` without the factors): all of them."""
        return range(layer.size)

    def back(self, layer: LayerView, k: int) -> sp.Expr:
        """∂E/∂out_k of the previous layer: Σ_j δ_j w_jk (BP2 before the activation's derivative)."""
        return sp.Add(*(d * row[k] for d, row in zip(layer.deltas, layer.weights)))

    def net_size(self, layer: LayerView, j: int, prev_size: int, prev_out_size: int) -> int:
        """Nodes of net_j's closed form when each previous out has ``prev_out_size`` nodes, without building it."""
        biased = layer.biases[j] is not None
        return (prev_size + biased > 1) + 2 * prev_size + prev_size * prev_out_size + biased

    # -- floats and exact numbers -------------------------------------------------------

    def net_terms(self, layer: LayerView, outs: Sequence[sp.Symbol], j: int, value: Value) -> list[float]:
        """The terms of net_j's sum as floats (their size tells rounding noise from a true 0)."""
        terms = [value(w) * value(o) for w, o in zip(layer.weights[j], outs)]
        bias = layer.biases[j]
        return [*terms, value(bias)] if bias is not None else terms

    def exact_net(
        self,
        layer: LayerView,
        j: int,
        weights: Sequence[Sequence[Dyadic]],
        outs: Sequence[Dyadic],
        bias: sp.Float | float | None,
        digits: int,
    ) -> sp.Float:
        """net_j exactly (Σ w·o + b in integers), rounded once to ``digits``; ``weights`` as (m, e) pairs."""
        return exact_sum(weights[j], outs, bias, digits)

    def back_terms(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic]
    ) -> tuple[list[Dyadic], list[Dyadic]]:
        """The products of Σ_j δ_j w_jk, as (coefficients, values)."""
        return [row[k] for row in weights], list(deltas)

    def exact_back(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic], digits: int
    ) -> sp.Float:
        """Σ_j δ_j w_jk exactly, rounded once to ``digits``; ``weights`` as (m, e) pairs."""
        return exact_sum([row[k] for row in weights], deltas, None, digits)

    # -- generated lines (the exported module) ---------------------------------------------

    def forward_lines(self, layer: LayerSpec, prev: str, prev_size: int = 0) -> list[str]:
        """z = a Wᵀ + b for a batch (rows are samples); stored neuron by neuron where :func:`by_neuron` says so."""
        l = layer.number
        biased = layer.bias.kind is not BiasKind.NONE
        lines = [f"# z{l} = a{l - 1} W{l}ᵀ + b{l}" if biased else f"# z{l} = a{l - 1} W{l}ᵀ"]
        if transposed_forward(layer.size, prev_size):
            lines += [
                f"# in float64 as (W{l} a{l - 1}ᵀ)ᵀ, a transposed view: faster for a narrow layer on a wide input (measured)",
                f"z{l} = (W{l} @ {prev}.T).T if {prev}.dtype == np.float64 else {prev}.dot(W{l}.T)",
            ]
        elif by_neuron(layer.size, prev_size):
            lines += [
                f"# as (W{l} a{l - 1}ᵀ)ᵀ, a transposed view: z{l} is stored neuron by neuron, so the sums and maxima",
                f"# over its {layer.size} neurons (and over the batch) run along memory (measured: 2–4× faster)",
                f"z{l} = W{l}.dot({prev}.T).T",
            ]
        else:
            lines.append(f"z{l} = {prev}.dot(W{l}.T)")  # .dot: the same BLAS call as @, less overhead on small arrays
        return [*lines, *([f"z{l} += b{l}"] if biased else [])]

    def back_lines(self, layer: LayerSpec, prev_shape: tuple[int, ...] = (), prev_by_neuron: bool = False) -> list[str]:
        """δ of the previous layer before its activation's derivative: δ{l} W{l} (BP2).

        ``prev_by_neuron``: the previous layer stores its arrays neuron by neuron, and so will its δ.
        """
        l = layer.number
        if prev_shape:  # the previous layer's maps were flattened into this one: back to their shape
            return [f"d{l - 1} = d{l}.dot(W{l}).reshape(a{l - 1}.shape)"]
        if prev_by_neuron:
            return [
                f"d{l - 1} = W{l}.T.dot(d{l}.T).T  # a transposed view: δ{l - 1} stored neuron by neuron, for its sums"
            ]
        return [f"d{l - 1} = d{l}.dot(W{l})"]

    def gradient_lines(self, layer: LayerSpec, prev: str, prev_size: int) -> list[str]:
        """∂E/∂W = δᵀ a (BP4) and ∂E/∂b = Σ δ (BP3) for a batch, in the grads dict."""
        l = layer.number
        kind = layer.bias.kind
        lines = [f"# ∂E/∂W{l} = δ{l}ᵀ a{l - 1}   (BP4)"]
        if kind is BiasKind.SHARED:
            lines.append(f"# ∂E/∂b{l} = Σ_j δ{l}_j   (BP3; the shared bias feeds every neuron of the layer)")
        elif kind is BiasKind.PER_NEURON:
            lines.append(f"# ∂E/∂b{l} = δ{l} summed over the batch   (BP3)")
        # one sample: δᵀa is an outer product, which .dot does 3× faster than @ (k = 1); a batch: δᵀa as written,
        # never (aᵀδ)ᵀ, which is slower at one thread (72 against 97 µs for 784→30 at batch 64) and not C-contiguous
        lines += ["if single:", f'    grads["W{l}"] = d{l}.T.dot({prev})']
        if kind is BiasKind.PER_NEURON:
            lines.append(f'    grads["b{l}"] = d{l}[0]')
        lines += ["else:", f'    grads["W{l}"] = d{l}.T @ {prev}']
        if kind is BiasKind.PER_NEURON:
            lines.append(f'    grads["b{l}"] = d{l}.sum(axis=0)')
        if kind is BiasKind.SHARED:
            lines.append(f'grads["b{l}"] = d{l}.sum()')
        return lines


def by_neuron(size: int, prev_size: int) -> bool:
    """Whether a dense layer's z, a and δ are stored neuron by neuron (transposed views of (size, batch) arrays).

    A row maximum or sum over a few neurons (softmax's, a target's) and a bias's sum over the batch walk
    memory in short strides when rows are samples. Measured at one thread on an AMD EPYC at batch 256:
    over 10 neurons a row maximum took 12.5 µs stored sample by sample and 2.9 µs neuron by neuron, a
    bias sum 7.3 and 2.6 µs; over 30 neurons 14.2/3.5 and 6.6/3.1 µs; over 100 neurons 18.2/9.3 and
    9.9/8.2 µs. The product itself is then taken as (W aᵀ)ᵀ, within ±10 % of a Wᵀ at these sizes. A layer
    on a wide input keeps :func:`transposed_forward`'s rule: there the product's orientation dominates.
    A layer on fewer than 16 inputs (Mazur's) keeps rows of samples: its arrays are too small to gain, and
    the views cost 15 % of a 2-2-2 network's gradient at one sample.
    """
    return (size <= 32 and 16 <= prev_size < 256) or transposed_forward(size, prev_size)


def transposed_forward(size: int, prev_size: int) -> bool:
    """Whether a dense layer's z = a Wᵀ is computed as (W aᵀ)ᵀ (in float64; float32 keeps a Wᵀ).

    Measured at one thread with OpenBLAS 0.3.31 (SkylakeX kernel, the 2-vCPU AMD EPYC machine), batches of 64 and 256:
    from 256 or more inputs into a layer whose size is not a multiple of 16, (W aᵀ)ᵀ took 0.65–0.8× the
    time of a Wᵀ for 30 neurons and 0.85–1.0× for 10, 20, 48 and 100; for 16, 32 and 64 neurons 0.93–1.22×,
    for 1024 neurons 1.2×, and in float32 slower at every size tried (1.2× for 784→30 at batch 256).
    """
    return prev_size >= 256 and size <= 128 and size % 16 != 0


@dataclass(frozen=True)
class Windows:
    """Where each window of a conv or pool layer reads: ``spatial[p, e]`` is the flat position (within one
    channel) of entry e of position p's window, or −1 where it falls on the zero padding."""

    spatial: np.ndarray  # (positions, entries) of int
    positions: int  # output positions per channel (Ho·Wo)
    entries: int  # window entries per channel (kh·kw)
    area: int  # input positions per channel (H·W)


@cache
def windows(geometry: Geometry) -> Windows:
    """The window table of a layer's geometry (made once per geometry)."""
    sides, out_sides = geometry.in_shape[1:], geometry.out_shape[1:]
    grids = np.meshgrid(
        *(np.arange(o) * s for o, s in zip(out_sides, geometry.stride)),
        *(np.arange(k) for k in geometry.kernel),
        indexing="ij",
    )
    d = geometry.dims
    flat = np.zeros(grids[0].shape, dtype=np.int64)
    inside = np.ones(grids[0].shape, dtype=bool)
    for axis in range(d):
        coordinate = grids[axis] + grids[d + axis] - geometry.padding[axis]
        inside &= (coordinate >= 0) & (coordinate < sides[axis])
        flat = flat * sides[axis] + coordinate
    flat = np.where(inside, flat, -1)
    positions, entries = math.prod(out_sides), math.prod(geometry.kernel)
    return Windows(flat.reshape(positions, entries), positions, entries, math.prod(sides))


@dataclass(frozen=True)
class Link:
    """One product of a map layer's net: out ``k`` of the previous layer into net ``j``, through kernel entry
    ``col`` of output channel ``row`` (a pool has no weights: row −1)."""

    j: int
    k: int
    row: int
    col: int


class MapKind:
    """What conv and pool layers share: nets made from windows of the previous layer's maps."""

    name = ""

    def links_into(self, layer: LayerView, j: int) -> list[Link]:
        raise NotImplementedError

    def links_from(self, layer: LayerView, k: int) -> list[Link]:
        raise NotImplementedError

    def factor(self, layer: LayerView, link: Link) -> sp.Expr:
        """∂net_j/∂out_k along one link: the kernel weight, or a pool's constant."""
        raise NotImplementedError

    def coefficient(self, link: Link, weights: Sequence[Sequence[Dyadic]]) -> Dyadic:
        """The link's factor as (m, e) (a kernel weight's value)."""
        raise NotImplementedError

    # -- the maths, from the links -----------------------------------------------------

    def net(self, layer: LayerView, outs: Sequence[sp.Expr], j: int) -> sp.Expr:
        total = sp.Add(*(self.factor(layer, link) * outs[link.k] for link in self.links_into(layer, j)))
        bias = layer.biases[j]
        return total + bias if bias is not None else total

    def bias_index(self, layer: LayerSpec, j: int) -> int:
        """Which of the layer's bias names neuron j adds: its channel's."""
        assert layer.geometry is not None
        return j // windows(layer.geometry).positions

    def bias_uses(self, layer: LayerView, row: int | None) -> list[Use]:
        """A channel's bias feeds every position of its map; a shared bias every position of every map."""
        assert layer.spec.geometry is not None
        positions = windows(layer.spec.geometry).positions
        rows = range(layer.size) if row is None else range(row * positions, (row + 1) * positions)
        return [Use(j, sp.S.One) for j in rows]

    def out_uses(self, layer: LayerView, k: int) -> list[Use]:
        return [Use(link.j, self.factor(layer, link)) for link in self.links_from(layer, k)]

    def out_heads(self, layer: LayerView, k: int) -> list[int]:
        """The nets out_k of the previous layer feeds (:meth:`out_uses` without the factors)."""
        return [link.j for link in self.links_from(layer, k)]

    def back(self, layer: LayerView, k: int) -> sp.Expr:
        deltas = layer.deltas
        return sp.Add(*(deltas[link.j] * self.factor(layer, link) for link in self.links_from(layer, k)))

    def net_size(self, layer: LayerView, j: int, prev_size: int, prev_out_size: int) -> int:
        terms = len(self.links_into(layer, j))
        biased = layer.biases[j] is not None
        return (terms + biased > 1) + 2 * terms + terms * prev_out_size + biased

    def net_terms(self, layer: LayerView, outs: Sequence[sp.Symbol], j: int, value: Value) -> list[float]:
        terms = [_float_of(self.factor(layer, link), value) * value(outs[link.k]) for link in self.links_into(layer, j)]
        bias = layer.biases[j]
        return [*terms, value(bias)] if bias is not None else terms

    def exact_net(
        self,
        layer: LayerView,
        j: int,
        weights: Sequence[Sequence[Dyadic]],
        outs: Sequence[Dyadic],
        bias: sp.Float | float | None,
        digits: int,
    ) -> sp.Float:
        links = self.links_into(layer, j)
        return exact_sum(
            [self.coefficient(link, weights) for link in links], [outs[link.k] for link in links], bias, digits
        )

    def exact_back(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic], digits: int
    ) -> sp.Float:
        links = self.links_from(layer, k)
        return exact_sum(
            [self.coefficient(link, weights) for link in links], [deltas[link.j] for link in links], None, digits
        )


class Conv(MapKind):
    """A convolution (torch's cross-correlation): net_{o,p} = Σ_{i,e} w_{o,i,e} · out_{i, p+e} + b_o.

    One kernel weight is used at every position of its output channel's map: its uses are those positions
    (those whose window entry falls on the zero padding multiply 0, and are not uses).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def links_into(self, layer: LayerView, j: int) -> list[Link]:
        geometry = _geometry(layer)
        o, p = divmod(j, windows(geometry).positions)
        return [Link(j, k, o, col) for k, col in _conv_tables(geometry)[0][p]]

    def links_from(self, layer: LayerView, k: int) -> list[Link]:
        geometry = _geometry(layer)
        positions = windows(geometry).positions
        out_of = _conv_tables(geometry)[1][k]
        return [Link(o * positions + p, k, o, col) for o in range(geometry.out_shape[0]) for p, col in out_of]

    def out_heads(self, layer: LayerView, k: int) -> list[int]:
        geometry = _geometry(layer)
        positions = windows(geometry).positions
        out_of = _conv_tables(geometry)[1][k]
        return [o * positions + p for o in range(geometry.out_shape[0]) for p, _ in out_of]

    def factor(self, layer: LayerView, link: Link) -> sp.Expr:
        return layer.weights[link.row][link.col]

    def products(self, layer: LayerView, outs: Sequence[sp.Expr], j: int) -> list[tuple[sp.Expr, sp.Expr]]:
        """net_j's products as (kernel weight, out) pairs from the compact window table, without building the sum."""
        geometry = _geometry(layer)
        o, p = divmod(j, windows(geometry).positions)
        row = layer.weights[o]
        return [(row[col], outs[k]) for k, col in _conv_tables(geometry)[0][p]]

    def coefficient(self, link: Link, weights: Sequence[Sequence[Dyadic]]) -> Dyadic:
        return weights[link.row][link.col]

    def exact_net(
        self,
        layer: LayerView,
        j: int,
        weights: Sequence[Sequence[Dyadic]],
        outs: Sequence[Dyadic],
        bias: sp.Float | float | None,
        digits: int,
    ) -> sp.Float:
        """net_j exactly, from the compact window table (no Link objects: a LeNet has 240,000 links)."""
        geometry = _geometry(layer)
        o, p = divmod(j, windows(geometry).positions)
        row = weights[o]
        into = _conv_tables(geometry)[0][p]
        return exact_sum([row[col] for _, col in into], [outs[k] for k, _ in into], bias, digits)

    def exact_back(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic], digits: int
    ) -> sp.Float:
        """Σ δ·w over the nets out_k feeds, exactly."""
        geometry = _geometry(layer)
        positions = windows(geometry).positions
        out_of = _conv_tables(geometry)[1][k]
        coefficients = [weights[o][col] for o in range(len(weights)) for _, col in out_of]
        values = [deltas[o * positions + p] for o in range(len(weights)) for p, _ in out_of]
        return exact_sum(coefficients, values, None, digits)

    def weight_uses(self, layer: LayerView, outs: Sequence[sp.Expr], row: int, col: int) -> list[Use]:
        """w_{o,c} is used at every position p of map o whose window entry c is an input: ∂net/∂w = that out."""
        geometry = _geometry(layer)
        table = windows(geometry)
        channel, entry = divmod(col, table.entries)
        uses = []
        for p, spatial in enumerate(table.spatial[:, entry].tolist()):
            if spatial >= 0:
                uses.append(Use(row * table.positions + p, outs[channel * table.area + spatial]))
        return uses

    # -- generated lines (the exported module: MAP_SOURCE's functions) --------------------

    def forward_lines(self, layer: LayerSpec, prev: str, prev_size: int = 0) -> list[str]:
        """z = W ⋆ a + b for a batch of maps: im2col, then one GEMM."""
        g = _spec_geometry(layer)
        l = layer.number
        biased = layer.bias.kind is not BiasKind.NONE
        return [
            f"# z{l} = W{l} ⋆ a{l - 1}{' + b' + str(l) if biased else ''}: every {_window_word(g)} window of "
            f"a{l - 1} a row of cols{l} (im2col), times the kernels",
            f"z{l}, cols{l} = _conv({prev}, W{l}, {f'b{l}' if biased else 'None'}, {g.stride}, {g.padding}, {l})",
        ]

    def back_lines(self, layer: LayerSpec, prev_shape: tuple[int, ...] = (), prev_by_neuron: bool = False) -> list[str]:
        """δ of the previous layer before its f' (BP2): each window's Wᵀδ added back where it read."""
        g = _spec_geometry(layer)
        l = layer.number
        return [
            f"# each window's W{l}ᵀ δ{l} added back where the window read a{l - 1}",
            f"d{l - 1} = _conv_back(d{l}, W{l}, a{l - 1}.shape, {g.stride}, {g.padding}, cols{l})",
        ]

    def gradient_lines(self, layer: LayerSpec, prev: str, prev_size: int) -> list[str]:
        """∂E/∂W (each kernel weight's sum over its uses) and ∂E/∂b (over each channel's positions)."""
        l = layer.number
        axes = (0, *range(2, 1 + len(layer.shape)))
        lines = [
            f"# ∂E/∂W{l}: each kernel weight's δ{l} · input summed over its uses (every position), as one product",
            f'grads["W{l}"] = _kernel_gradient(d{l}, cols{l}, W{l}.shape)',
        ]
        if layer.bias.kind is BiasKind.PER_NEURON:
            lines += [
                f"# ∂E/∂b{l}: δ{l} summed over each channel's positions (BP3)",
                f'grads["b{l}"] = d{l}.sum(axis={axes})',
            ]
        elif layer.bias.kind is BiasKind.SHARED:
            lines += [
                f"# ∂E/∂b{l}: every δ{l} (BP3; one bias for every position of every map)",
                f'grads["b{l}"] = d{l}.sum()',
            ]
        return lines


class Pool(MapKind):
    """Max or average pooling, channel by channel: no parameters, no activation.

    Average: net = (1/K) Σ the window, so each input gets 1/K of the δ. Max: net is the window's first largest
    input (as torch picks it, decided by the float pass: ``layer.routes``), which gets the whole δ; the others 0.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.maximum = name.startswith("max")

    def window(self, layer: LayerView, j: int) -> list[int]:
        """The inputs (indices into the layer below's outs) that pooled output ``j`` reads, in torch's order."""
        return self._window(layer, j)

    def _window(self, layer: LayerView, j: int) -> list[int]:
        table = windows(_geometry(layer))
        channel, p = divmod(j, table.positions)
        return [channel * table.area + s for s in table.spatial[p].tolist() if s >= 0]

    def links_into(self, layer: LayerView, j: int) -> list[Link]:
        if self.maximum:
            return [Link(j, layer.routes[j], -1, 0)]
        return [Link(j, k, -1, 0) for k in self._window(layer, j)]

    def links_from(self, layer: LayerView, k: int) -> list[Link]:
        links = _pool_from(_geometry(layer))[k]
        if self.maximum:
            routes = layer.routes
            return [link for link in links if routes[link.j] == k]
        return links

    def factor(self, layer: LayerView, link: Link) -> sp.Expr:
        return sp.S.One if self.maximum else sp.Rational(1, windows(_geometry(layer)).entries)

    def exact_net(
        self,
        layer: LayerView,
        j: int,
        weights: Sequence[Sequence[Dyadic]],
        outs: Sequence[Dyadic],
        bias: sp.Float | float | None,
        digits: int,
    ) -> sp.Float:
        links = self.links_into(layer, j)
        return _exact_mean(
            [outs[link.k] for link in links], 1 if self.maximum else windows(_geometry(layer)).entries, digits
        )

    def exact_back(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic], digits: int
    ) -> sp.Float:
        links = self.links_from(layer, k)
        return _exact_mean(
            [deltas[link.j] for link in links], 1 if self.maximum else windows(_geometry(layer)).entries, digits
        )

    def weight_uses(self, layer: LayerView, outs: Sequence[sp.Expr], row: int, col: int) -> list[Use]:
        return []  # a pool has no weights

    # -- generated lines (the exported module: MAP_SOURCE's functions) --------------------

    def forward_lines(self, layer: LayerSpec, prev: str, prev_size: int = 0) -> list[str]:
        """z = each window's largest entry (and r: which it is), or each window's mean."""
        g = _spec_geometry(layer)
        l = layer.number
        if self.maximum:
            return [
                f"# z{l} = the largest entry of each {_window_word(g)} window of a{l - 1} (r{l}: which one)",
                f"z{l}, r{l} = _maxpool({prev}, {g.kernel}, {g.stride})",
            ]
        return [
            f"# z{l} = the mean of each {_window_word(g)} window of a{l - 1}",
            f"z{l} = _avgpool({prev}, {g.kernel}, {g.stride})",
        ]

    def back_lines(self, layer: LayerSpec, prev_shape: tuple[int, ...] = (), prev_by_neuron: bool = False) -> list[str]:
        """δ of the previous layer (BP2; it has f'): routed to each window's winner, or 1/K to every entry."""
        g = _spec_geometry(layer)
        l = layer.number
        if self.maximum:
            return [
                f"# each window's δ{l} to the entry that won it",
                f"d{l - 1} = _maxpool_back(d{l}, r{l}, a{l - 1}.shape, {g.kernel}, {g.stride})",
            ]
        return [
            f"# 1/{math.prod(g.kernel)} of each window's δ{l} to every entry of it",
            f"d{l - 1} = _avgpool_back(d{l}, a{l - 1}.shape, {g.kernel}, {g.stride})",
        ]

    def gradient_lines(self, layer: LayerSpec, prev: str, prev_size: int) -> list[str]:
        return []  # no parameters


class Recurrent:
    """A recurrent layer: h_t = f(W x_t + U h_{t−1} + b), h_0 = 0, over the T steps of the input sequence.

    Its neurons are its states, step first: neuron n = t·H + j is unit j at step t (from 0). Its weight rows are
    [W | U]: row j holds w_j1 … w_jD, then u_j1 … u_jH. An input weight w_jk is used at every step (in z_t,j,
    with ∂z/∂w = x_t,k); a recurrent weight u_jk at every step but the first (∂z_t,j/∂u_jk = h_{t−1},k): its
    gradient is a sum over time. A state feeds the next step's nets (its *own* layer's) as well as, at the last
    step, the next layer: δ_t = f′(z_t) ⊙ (Uᵀ δ_{t+1} + ∂E/∂h_t), ∂E/∂h_t from the next layer only at t = T.
    """

    name = "rnn"

    @staticmethod
    def sizes(layer: LayerSpec) -> tuple[int, int, int]:
        """(T, H, D): steps, units, input features."""
        units = len(layer.weight_names)
        return layer.steps, units, len(layer.weight_names[0]) - units

    # -- the maths -----------------------------------------------------------------

    def net(self, layer: LayerView, outs: Sequence[sp.Expr], n: int) -> sp.Expr:
        _steps, units, features = self.sizes(layer.spec)
        t, j = divmod(n, units)
        row = layer.weights[j]
        terms = [row[k] * outs[t * features + k] for k in range(features)]
        if t > 0:
            own = layer.outs
            terms += [row[features + k] * own[(t - 1) * units + k] for k in range(units)]
        bias = layer.biases[n]
        return sp.Add(*terms, *([bias] if bias is not None else []))

    def weight_uses(self, layer: LayerView, outs: Sequence[sp.Expr], row: int, col: int) -> list[Use]:
        """w_jk: in z_t,j at every step t (factor x_t,k); u_jk: at every step after the first (factor h_{t−1},k)."""
        steps, units, features = self.sizes(layer.spec)
        if col < features:
            return [Use(t * units + row, outs[t * features + col]) for t in range(steps)]
        own = layer.outs
        k = col - features
        return [Use(t * units + row, own[(t - 1) * units + k]) for t in range(1, steps)]

    def bias_index(self, layer: LayerSpec, n: int) -> int:
        return n % self.sizes(layer)[1]

    def bias_uses(self, layer: LayerView, row: int | None) -> list[Use]:
        """A unit's bias is added at every step; a shared one at every unit of every step."""
        steps, units, _ = self.sizes(layer.spec)
        if row is None:
            return [Use(n, sp.S.One) for n in range(layer.size)]
        return [Use(t * units + row, sp.S.One) for t in range(steps)]

    def out_uses(self, layer: LayerView, k: int) -> list[Use]:
        """Input x_t,d feeds every unit's net at step t, through w_jd."""
        _, units, features = self.sizes(layer.spec)
        t, d = divmod(k, features)
        return [Use(t * units + j, layer.weights[j][d]) for j in range(units)]

    def out_heads(self, layer: LayerView, k: int) -> list[int]:
        _, units, features = self.sizes(layer.spec)
        t = k // features
        return [t * units + j for j in range(units)]

    def back(self, layer: LayerView, k: int) -> sp.Expr:
        return sp.Add(*(layer.deltas[u.row] * u.factor for u in self.out_uses(layer, k)))

    def self_uses(self, layer: LayerView, n: int) -> list[Use]:
        """State h_t,k feeds every unit's net at step t + 1, through u_jk (none after the last step)."""
        steps, units, features = self.sizes(layer.spec)
        t, k = divmod(n, units)
        if t + 1 >= steps:
            return []
        return [Use((t + 1) * units + j, layer.weights[j][features + k]) for j in range(units)]

    def self_back(self, layer: LayerView, n: int) -> sp.Expr:
        """Σ_j δ_{t+1},j u_jk: what flows back to h_t,k from the next step (BPTT's Uᵀ δ_{t+1})."""
        return sp.Add(*(layer.deltas[u.row] * u.factor for u in self.self_uses(layer, n)))

    def exposed(self, layer: LayerSpec) -> range:
        """The neurons the next layer reads: the states of the last step."""
        steps, units, _ = self.sizes(layer)
        return range((steps - 1) * units, steps * units)

    # -- floats and exact numbers ---------------------------------------------------

    def net_terms(self, layer: LayerView, outs: Sequence[sp.Symbol], n: int, value: Value) -> list[float]:
        _steps, units, features = self.sizes(layer.spec)
        t, j = divmod(n, units)
        row = layer.weights[j]
        terms = [value(row[k]) * value(outs[t * features + k]) for k in range(features)]
        if t > 0:
            terms += [value(row[features + k]) * value(layer.outs[(t - 1) * units + k]) for k in range(units)]
        bias = layer.biases[n]
        return [*terms, value(bias)] if bias is not None else terms

    def exact_net(
        self,
        layer: LayerView,
        n: int,
        weights: Sequence[Sequence[Dyadic]],
        outs: Sequence[Dyadic],
        bias: sp.Float | float | None,
        digits: int,
    ) -> sp.Float:
        """z_t,j exactly; ``outs`` holds the input sequence, then this layer's states so far."""
        steps, units, features = self.sizes(layer.spec)
        t, j = divmod(n, units)
        row = weights[j]
        coefficients = list(row[:features])
        values = [outs[t * features + k] for k in range(features)]
        if t > 0:
            start = steps * features + (t - 1) * units
            coefficients += row[features:]
            values += outs[start : start + units]
        return exact_sum(coefficients, values, bias, digits)

    def back_terms(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic]
    ) -> tuple[list[Dyadic], list[Dyadic]]:
        """The products of Σ_j δ_t,j w_jd for input k = (t, d), as (coefficients, values)."""
        _, units, features = self.sizes(layer.spec)
        t, d = divmod(k, features)
        return [weights[j][d] for j in range(units)], [deltas[t * units + j] for j in range(units)]

    def exact_back(
        self, layer: LayerView, k: int, weights: Sequence[Sequence[Dyadic]], deltas: Sequence[Dyadic], digits: int
    ) -> sp.Float:
        return exact_sum(*self.back_terms(layer, k, weights, deltas), None, digits)

    # -- generated lines (the exported module) -----------------------------------------

    def recurrent_forward_lines(self, layer: LayerSpec, prev: str, f: Code) -> list[str]:
        """z_t and h_t step by step; ``f(name)`` is the activation's lines and expression for the array ``name``."""
        l = layer.number
        steps, _units, _ = self.sizes(layer)
        biased = layer.bias.kind is not BiasKind.NONE
        temps, code = f("zt")
        return [
            f"# z{l}_t = x_t W{l}ᵀ + h_(t−1) U{l}ᵀ{' + b' + str(l) if biased else ''},  h_t = a{l}_t = f(z{l}_t),  "
            "h_0 = 0: every step's x_t W",
            f"# in one product, then a loop over the {steps} steps (each needs the state before it)",
            f"xw{l} = {prev}.dot(W{l}.T)" + (f" + b{l}" if biased else ""),
            f"h = np.zeros_like(xw{l}[:, 0])  # h_0 = 0",
            f"zs{l}, hs{l} = [], []",
            f"for t in range({steps}):",
            f"    zt = xw{l}[:, t] + h.dot(U{l}.T)",
            *(f"    {line}" for line in temps),
            f"    h = {code}",
            f"    zs{l}.append(zt)",
            f"    hs{l}.append(h)",
            f"z{l} = np.stack(zs{l}, axis=1)",
            f"a{l} = np.stack(hs{l}, axis=1)",
        ]

    def recurrent_back_lines(self, layer: LayerSpec, fprime: Code) -> list[str]:
        """BPTT: d{l} holds ∂E/∂h_T from the next layer; δ_t = (that at T, plus δ_(t+1) U) ⊙ f'(z_t), last first."""
        l = layer.number
        steps, _, _ = self.sizes(layer)
        temps, code = fprime(f"a{l}[:, t]", f"z{l}[:, t]")
        return [
            f"# through time, last step first: δ{l}_t = (∂E/∂h_t + δ{l}_(t+1) U{l}) ⊙ f'(z{l}_t); "
            f"∂E/∂h_t comes from layer {l + 1} at t = {steps} only",
            f"g = d{l}",
            f"ds{l} = []",
            f"for t in range({steps - 1}, -1, -1):",
            *(f"    {line}" for line in temps),
            f"    dt = g * ({code})" if code != "1" else "    dt = g",
            f"    ds{l}.append(dt)",
            f"    g = dt.dot(U{l})",
            f"d{l} = np.stack(ds{l}[::-1], axis=1)",
        ]

    def back_lines(self, layer: LayerSpec, prev_shape: tuple[int, ...] = (), prev_by_neuron: bool = False) -> list[str]:
        """Nothing: an rnn reads the input layer, which has no δ."""
        return []

    def gradient_lines(self, layer: LayerSpec, prev: str, prev_size: int) -> list[str]:
        """Each weight's gradient is a sum over time: W over every step, U over every step after the first."""
        l = layer.number
        _, units, features = self.sizes(layer)
        lines = [
            f"# ∂E/∂W{l} = Σ_t δ{l}_tᵀ x_t,  ∂E/∂U{l} = Σ_(t≥2) δ{l}_tᵀ h_(t−1): sums over time, as one product each",
            f'grads["W{l}"] = d{l}.reshape(-1, {units}).T.dot({prev}.reshape(-1, {features}))',
            f'grads["U{l}"] = d{l}[:, 1:].reshape(-1, {units}).T.dot(a{l}[:, :-1].reshape(-1, {units}))',
        ]
        if layer.bias.kind is BiasKind.PER_NEURON:
            lines += [f"# ∂E/∂b{l} = Σ_t δ{l}_t (BP3 over the steps)", f'grads["b{l}"] = d{l}.sum(axis=(0, 1))']
        elif layer.bias.kind is BiasKind.SHARED:
            lines += [f"# ∂E/∂b{l} = every δ{l} (one bias for every unit and step)", f'grads["b{l}"] = d{l}.sum()']
        return lines

    def self_back_terms(
        self, layer: LayerView, n: int, weights: Sequence[Sequence[Dyadic]], deltas: Mapping[int, Dyadic]
    ) -> tuple[list[Dyadic], list[Dyadic]]:
        """The products of Σ_j δ_{t+1},j u_jk for state n = (t, k), as (coefficients, values)."""
        steps, units, features = self.sizes(layer.spec)
        t, k = divmod(n, units)
        if t + 1 >= steps:
            return [], []
        return [weights[j][features + k] for j in range(units)], [deltas[(t + 1) * units + j] for j in range(units)]


Value = Callable[[sp.Symbol], float]
Code = Callable[..., tuple[list[str], str]]  # names of arrays → (temporary lines, an expression), for the module

KINDS: dict[str, Dense | Conv | Pool | Recurrent] = {
    Recurrent.name: Recurrent(),
    Dense.name: Dense(),
    **{name: Conv(name) for name in CONV_KINDS},
    **{name: Pool(name) for name in POOL_KINDS},
}
Kind = Dense | Conv | Pool | Recurrent


def weight_arrays(layer: LayerSpec, matrix: np.ndarray) -> dict[str, np.ndarray]:
    """A layer's weight matrix (a row per unit, the names' order) as the exported module's arrays: W{l} for a
    dense layer, W{l} of torch's (C_out, C_in, kh, kw) for a conv, W{l} and U{l} for an rnn, none for a pool."""
    l = layer.number
    if not layer.weight_names:
        return {}
    if layer.kind == Recurrent.name:
        features = len(layer.weight_names[0]) - len(layer.weight_names)
        return {f"W{l}": matrix[:, :features], f"U{l}": matrix[:, features:]}
    if layer.geometry is not None:
        return {f"W{l}": matrix.reshape(layer.parameter_shape)}
    return {f"W{l}": matrix}


def weight_matrix(layer: LayerSpec, arrays: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """The inverse of :func:`weight_arrays`: the module's arrays as the layer's matrix (None if they are absent)."""
    l = layer.number
    if not layer.weight_names or f"W{l}" not in arrays:
        return None
    if layer.kind == Recurrent.name:
        return np.hstack([np.asarray(arrays[f"W{l}"]), np.asarray(arrays[f"U{l}"])])
    w = np.asarray(arrays[f"W{l}"])
    return w.reshape(w.shape[0], -1) if w.ndim > 2 else w


def kind_of(layer: LayerSpec) -> Kind:
    """The kind of a (non-input) layer."""
    return KINDS[layer.kind]


def _geometry(layer: LayerView) -> Geometry:
    return _spec_geometry(layer.spec)


def _spec_geometry(layer: LayerSpec) -> Geometry:
    geometry = layer.geometry
    assert geometry is not None, "a map layer has a geometry"
    return geometry


@cache
def _conv_tables(geometry: Geometry) -> tuple[list[list[tuple[int, int]]], list[list[tuple[int, int]]]]:
    """The links of a conv, without the output channel (every channel reads the same windows):

    - ``into[p]``: (k, col) for every input k that position p's window reads, with the kernel column col;
    - ``out_of[k]``: (p, col) for every position whose window reads input k, in the order of p.
    """
    table = windows(geometry)
    in_channels = geometry.in_shape[0]
    into: list[list[tuple[int, int]]] = []
    out_of: list[list[tuple[int, int]]] = [[] for _ in range(in_channels * table.area)]
    for p, row in enumerate(table.spatial.tolist()):
        here = [
            (i * table.area + s, i * table.entries + e) for i in range(in_channels) for e, s in enumerate(row) if s >= 0
        ]
        into.append(here)
        for k, col in here:
            out_of[k].append((p, col))
    return into, out_of


@cache
def _pool_from(geometry: Geometry) -> list[list[Link]]:
    """out k of the previous layer → the windows of its channel that hold it."""
    table = windows(geometry)
    channels = geometry.in_shape[0]
    result: list[list[Link]] = [[] for _ in range(channels * table.area)]
    for p, row in enumerate(table.spatial.tolist()):
        for s in row:
            if s >= 0:
                for c in range(channels):
                    result[c * table.area + s].append(Link(c * table.positions + p, c * table.area + s, -1, 0))
    return result


def _float_of(expr: sp.Expr, value: Value) -> float:
    return value(expr) if isinstance(expr, sp.Symbol) else float(expr)


def _exact_mean(values: Sequence[Dyadic], count: int, digits: int) -> sp.Float:
    """(Σ values) / count exactly, rounded once to ``digits`` (a max pool's single winner: count 1)."""
    if not values:
        return sp.Float(0, digits)
    low = min(e for _, e in values)
    total = sum(m << (e - low) for m, e in values)
    if count == 1:
        return rounded(total, low, digits)
    exact_total = from_man_exp(total, low)  # exact: as many bits as the integer has
    prec = dps_to_prec(digits)
    return sp.Float._new(mpf_div(exact_total, from_int(count), prec, round_nearest), prec, zero=False)  # one rounding


def exact_sum(
    coefficients: Sequence[Dyadic], values: Sequence[Dyadic], bias: sp.Float | float | None, digits: int
) -> sp.Float:
    """Σ c·v (+ b) computed exactly in integers (c and v as (m, e) pairs), rounded once to ``digits``."""
    terms = [(mc * mv, ec + ev) for (mc, ec), (mv, ev) in zip(coefficients, values) if mc and mv]
    if bias is not None:
        terms.append(dyadic(bias))
    if not terms:
        return sp.Float(0, digits)
    low = min(e for _, e in terms)
    total = sum(m << (e - low) for m, e in terms)
    return rounded(total, low, digits)


# --------------------------------------------------------------------------
# exact sums


def rounded(mantissa: int, exponent: int, digits: int) -> sp.Float:
    """mantissa · 2**exponent rounded once to ``digits`` significant digits, as a sympy Float (made directly from
    mpmath's parts: a few µs, where sp.Float(mpf, digits) takes a string round trip)."""
    prec = dps_to_prec(digits)
    return sp.Float._new(from_man_exp(mantissa, exponent, prec, round_nearest), prec, zero=False)


def dyadic(value: float | sp.Float) -> Dyadic:
    """(m, e) with value = m · 2**e exactly (a float, or a finite sympy Float)."""
    if isinstance(value, float):
        numerator, denominator = value.as_integer_ratio()
        return numerator, 1 - denominator.bit_length()
    parts = value._mpf_ if isinstance(value, sp.Float) else sp.Float(value)._mpf_
    sign, mantissa, exponent, _ = parts
    return (-mantissa if sign else mantissa), exponent


# --------------------------------------------------------------------------
# the map kinds' generated code: functions copied into an exported module that has conv or pool layers
# (kept as source text, as derive.core.init's are; the lines below call them)

MAP_SOURCE = '''
# The helpers keep maps in memory as (C, *sides, batch): a conv's GEMM then runs over every position of every
# sample at once, contiguous, and its product is already the next layer's maps. What they return are views of
# that memory in the module's order (batch, C, *sides), so every line outside them reads as usual.

_SCRATCH = threading.local()  # per thread: each conv layer's im2col columns, kept from one call to the next


def _columns(layer, shape, dtype):
    """The buffer for layer `layer`'s im2col columns, kept between calls (one per thread and layer, replaced when
    the shape changes): a LeNet's are 12 MB at batch 64, and 12 fresh MB a call cost 2,400 page faults, a fifth
    of the call (measured). Only the helpers read it: its numbers never leave the module."""
    buffers = _SCRATCH.__dict__.setdefault("columns", {})
    buffer = buffers.get(layer)
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        buffer = buffers[layer] = np.empty(shape, dtype)
    return buffer


def _channels_first(a):
    """The maps a (batch, C, *sides) as (C, *sides, batch): a view (no copy when a came from these helpers)."""
    return a.transpose(*range(1, a.ndim), 0)


def _batch_first(m):
    """Maps kept as (C, *sides, batch) seen as (batch, C, *sides): a view."""
    return m.transpose(m.ndim - 1, *range(m.ndim - 1))


def _grid(offset, stride, positions):
    """The index of the entries at window offset `offset` of every window: one strided slice per side."""
    return (slice(None), *[slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, positions)])


def _conv(a, W, b, stride, padding, layer):
    """z = W ⋆ a + b (torch's conv: a cross-correlation): every window of a as a column of `cols` (im2col, one
    copy into the layer's buffer), then one GEMM of the kernels with every window of every sample."""
    m = _channels_first(a)
    if any(padding):
        padded = np.zeros((m.shape[0], *[s + 2 * p for s, p in zip(m.shape[1:-1], padding)], m.shape[-1]))
        padded[(slice(None), *[slice(p, p + s) for p, s in zip(padding, m.shape[1:-1])])] = m
        m = padded
    else:
        m = np.ascontiguousarray(m)  # X arrives batch first: one transposing copy, then long runs below
    kernel = W.shape[2:]
    positions = [(s - k) // t + 1 for s, k, t in zip(m.shape[1:-1], kernel, stride)]
    # the windows as a view (C, *kernel, *positions, batch): entry (c, e, p, n) is m[c, p·stride + e, n]
    steps = m.strides[1:-1]
    windows = np.ndarray(
        (m.shape[0], *kernel, *positions, m.shape[-1]),
        m.dtype,
        m,
        0,
        (m.strides[0], *steps, *[step * t for step, t in zip(steps, stride)], m.strides[-1]),
    )
    cols = _columns(layer, windows.shape, windows.dtype)
    np.copyto(cols, windows)  # the one copy
    cols = cols.reshape(W[0].size, -1)
    z = W.reshape(W.shape[0], -1).dot(cols)  # (C_out, positions · batch)
    if b is not None:
        z += b[:, None] if b.ndim else b
    return _batch_first(z.reshape(W.shape[0], *positions, a.shape[0])), cols


def _kernel_gradient(delta, cols, shape):
    """∂E/∂W of a conv: for each kernel weight the sum over its uses (every position of every sample) of
    δ · the input there, as one GEMM with the forward pass's columns."""
    return _channels_first(delta).reshape(shape[0], -1).dot(cols.T).reshape(shape)


def _scatter(pieces, shape, stride, padding):
    """The adjoint of the windows: pieces (C, *kernel, *positions, batch) added back where each window read,
    as maps (batch, C, *sides); a loop over the kernel's offsets, not over positions."""
    d = len(stride)
    kernel, positions = pieces.shape[1 : 1 + d], pieces.shape[1 + d : 1 + 2 * d]
    sides = [s + 2 * p for s, p in zip(shape[2:], padding)]
    out = np.zeros((shape[1], *sides, shape[0]))
    tiled = all(k <= s for k, s in zip(kernel, stride))  # windows that never overlap: each entry is written once
    for offset in np.ndindex(*kernel):
        target = out[_grid(offset, stride, positions)]
        if tiled:
            target[...] = pieces[(slice(None), *offset)]
        else:
            np.add(target, pieces[(slice(None), *offset)], out=target)
    if any(padding):
        out = out[(slice(None), *[slice(p, p + s) for p, s in zip(padding, shape[2:])])]
    return _batch_first(out)


def _conv_back(delta, W, shape, stride, padding, cols):
    """∂E/∂a of a conv's input (BP2 before f'): each window's Wᵀδ (one GEMM, written over the forward pass's
    columns, which ∂E/∂W has used), added back where the window read."""
    product = np.result_type(W, delta) == cols.dtype
    pieces = np.dot(W.reshape(W.shape[0], -1).T, _channels_first(delta).reshape(W.shape[0], -1), cols if product else None)
    return _scatter(pieces.reshape(*W.shape[1:], *delta.shape[2:], delta.shape[0]), shape, stride, padding)


def _entries(m, kernel, stride):
    """For each offset of a window (row-major), that entry of every window of the maps m (C, *sides, batch)."""
    positions = [(s - k) // t + 1 for s, k, t in zip(m.shape[1:-1], kernel, stride)]
    return [m[_grid(offset, stride, positions)] for offset in np.ndindex(*kernel)]


def _maxpool(a, kernel, stride):
    """Each window's largest entry, and which entry it is (the first largest in the window, as torch picks)."""
    entries = _entries(_channels_first(a), kernel, stride)
    best = entries[0].copy()
    route = np.zeros(best.shape, np.uint8 if len(entries) <= 256 else np.intp)
    for e, entry in enumerate(entries[1:], start=1):
        better = entry > best  # strictly: a tie keeps the earlier entry
        np.copyto(route, e, where=better)
        np.maximum(best, entry, out=best)
    return _batch_first(best), _batch_first(route)


def _maxpool_back(delta, route, shape, kernel, stride):
    """δ of a max pool's input: each window's δ goes to the entry that won it; the others get 0."""
    dm, rm = _channels_first(delta), _channels_first(route)
    sides = shape[2:]
    # windows side by side that cover every input (LeNet's 2×2, stride 2): each entry is written once, as δ·[won]
    # (for finite δ: an inf · 0 would be nan where torch has 0)
    covering = all(k == s and n % k == 0 for k, s, n in zip(kernel, stride, sides)) and np.isfinite(dm).all()
    out = (np.empty if covering else np.zeros)((shape[1], *sides, shape[0]))
    tiled = all(k <= s for k, s in zip(kernel, stride))
    for e, target in enumerate(_entries(out, kernel, stride)):
        if covering:
            np.multiply(dm, rm == e, out=target)
        elif tiled:
            np.copyto(target, dm, where=rm == e)
        else:
            target += np.where(rm == e, dm, 0.0)
    return _batch_first(out)


def _avgpool(a, kernel, stride):
    """Each window's mean."""
    entries = _entries(_channels_first(a), kernel, stride)
    total = entries[0].copy()
    for entry in entries[1:]:
        total += entry
    total /= len(entries)
    return _batch_first(total)


def _avgpool_back(delta, shape, kernel, stride):
    """δ of an average pool's input: 1/K of each window's δ to every entry of it."""
    share = _channels_first(delta) / int(np.prod(kernel))
    out = np.zeros((shape[1], *shape[2:], shape[0]))
    tiled = all(k <= s for k, s in zip(kernel, stride))
    for target in _entries(out, kernel, stride):
        if tiled:
            target[...] = share
        else:
            target += share
    return _batch_first(out)
'''.strip()


# the same functions written against the Python array API standard (the array-api backend): no item assignment
# (JAX arrays are immutable), so a scatter is built from stack and reshape (zeros between the entries of a stride)
# and concat (zeros around them), summed over the kernel's offsets
MAP_SOURCE_ARRAY_API = '''
def _offsets(kernel):
    """Every offset of a window, row-major (the order torch numbers a window's entries)."""
    offsets = [()]
    for k in kernel:
        offsets = [(*offset, e) for offset in offsets for e in range(k)]
    return offsets


def _entries(a, kernel, stride):
    """For each offset of a window, that entry of every window of the maps a (batch, C, *sides); the positions."""
    positions = [(s - k) // t + 1 for s, k, t in zip(a.shape[2:], kernel, stride)]
    grids = [
        (slice(None), slice(None), *[slice(o, o + t * (n - 1) + 1, t) for o, t, n in zip(offset, stride, positions)])
        for offset in _offsets(kernel)
    ]
    return [a[grid] for grid in grids], positions


def _zeros(xp, like, shape):
    return xp.zeros(tuple(shape), dtype=like.dtype, device=device(like))


def _reshaped(x, shape):
    """x reshaped by its own namespace (a parameter may be a NumPy array beside Dask maps)."""
    return array_namespace(x).reshape(x, shape)


def _pad(xp, a, padding):
    """The maps a (batch, C, *sides) with `padding` zeros before and after each side."""
    for axis, p in enumerate(padding, start=2):
        if p:
            zeros = _zeros(xp, a, [*a.shape[:axis], p, *a.shape[axis + 1 :]])
            a = xp.concat([zeros, a, zeros], axis=axis)
    return a


def _place(xp, x, axis, offset, step, length):
    """x's entries along `axis` put at offset, offset + step, … of `length` zeros along that axis."""
    n = x.shape[axis]
    if step > 1:  # step − 1 zeros after each entry: stacked beside it, then merged into the axis
        x = xp.stack([x, *[xp.zeros_like(x)] * (step - 1)], axis=axis + 1)
        x = xp.reshape(x, (*x.shape[:axis], n * step, *x.shape[axis + 2 :]))
        x = x[(*[slice(None)] * axis, slice(0, step * (n - 1) + 1))]
    after = length - offset - x.shape[axis]
    parts = [_zeros(xp, x, [*x.shape[:axis], offset, *x.shape[axis + 1 :]])] if offset else []
    parts.append(x)
    if after:
        parts.append(_zeros(xp, x, [*x.shape[:axis], after, *x.shape[axis + 1 :]]))
    # a new array either way: the module's lines multiply δs in place (x may be a view, or a read-only broadcast)
    return xp.concat(parts, axis=axis) if len(parts) > 1 else xp.asarray(x, copy=True)


def _scatter(xp, pieces, shape, stride, padding):
    """The adjoint of the windows: pieces (batch, C, *kernel, *positions) added back where each window read, as
    maps of `shape`. One side at a time, the last first: each kernel offset's pieces placed, summed over the
    offsets (a loop over the kernel's offsets, not over positions)."""
    d = len(stride)
    sides = [s + 2 * p for s, p in zip(shape[2:], padding)]
    for t in reversed(range(d)):  # pieces: (batch, C, kernel_0..kernel_t, positions_0..positions_t, sides_t+1..)
        total = None
        for k in range(pieces.shape[2 + t]):
            placed = _place(xp, pieces[(*[slice(None)] * (2 + t), k)], 2 + 2 * t, k, stride[t], sides[t])
            total = placed if total is None else total + placed
        pieces = total
    if any(padding):
        pieces = pieces[(slice(None), slice(None), *[slice(p, p + s) for p, s in zip(padding, shape[2:])])]
    return pieces


def _conv(a, W, b, stride, padding, layer):
    """z = W ⋆ a + b (torch's conv: a cross-correlation): every window of a as a column of `cols` (im2col, one
    column a window), then a matrix product of the kernels with each sample's columns. (`layer` names the NumPy
    module's buffer; arrays here are new.)"""
    xp = array_namespace(a)
    d = W.ndim - 2
    entries, positions = _entries(_pad(xp, a, padding), W.shape[2:], stride)
    cols = xp.reshape(xp.stack(entries, axis=2), (a.shape[0], W.shape[1] * len(entries), -1))  # (batch, C·K, P)
    z = xp.reshape(_reshaped(W, (W.shape[0], -1)) @ cols, (a.shape[0], W.shape[0], *positions))
    if b is not None:
        z = z + (_reshaped(b, (-1, *[1] * d)) if b.ndim else b)
    return z, cols


def _kernel_gradient(delta, cols, shape):
    """∂E/∂W of a conv: for each kernel weight the sum over its uses (every position of every sample) of
    δ · the input there: each sample's δ times its columns, summed over the batch."""
    xp = array_namespace(delta)
    per_sample = xp.reshape(delta, (delta.shape[0], shape[0], -1)) @ xp.matrix_transpose(cols)
    return xp.reshape(xp.sum(per_sample, axis=0), shape)


def _conv_back(delta, W, shape, stride, padding, cols):
    """∂E/∂a of a conv's input (BP2 before f'): each window's Wᵀδ, added back where the window read. (`cols`: the
    NumPy module writes over the forward pass's columns; arrays here are new.)"""
    xp = array_namespace(delta)
    pieces = _reshaped(W, (W.shape[0], -1)).T @ xp.reshape(delta, (delta.shape[0], W.shape[0], -1))
    pieces = xp.reshape(pieces, (delta.shape[0], *W.shape[1:], *delta.shape[2:]))  # (batch, C, *kernel, *positions)
    return _scatter(xp, pieces, shape, stride, padding)


def _maxpool(a, kernel, stride):
    """Each window's largest entry, and which entry it is (the first largest in the window, as torch picks)."""
    xp = array_namespace(a)
    stacked = xp.stack(_entries(a, kernel, stride)[0], axis=-1)
    return xp.max(stacked, axis=-1), xp.argmax(stacked, axis=-1)


def _maxpool_back(delta, route, shape, kernel, stride):
    """δ of a max pool's input: each window's δ goes to the entry that won it; the others get 0."""
    xp = array_namespace(delta)
    zeros = xp.zeros_like(delta)
    pieces = xp.stack([xp.where(route == e, delta, zeros) for e in range(len(_offsets(kernel)))], axis=2)
    pieces = xp.reshape(pieces, (*delta.shape[:2], *kernel, *delta.shape[2:]))
    return _scatter(xp, pieces, shape, stride, (0,) * len(kernel))


def _avgpool(a, kernel, stride):
    """Each window's mean."""
    xp = array_namespace(a)
    entries = _entries(a, kernel, stride)[0]
    return xp.sum(xp.stack(entries, axis=-1), axis=-1) / len(entries)


def _avgpool_back(delta, shape, kernel, stride):
    """δ of an average pool's input: 1/K of each window's δ to every entry of it."""
    xp = array_namespace(delta)
    d = len(kernel)
    share = xp.reshape(delta / len(_offsets(kernel)), (*delta.shape[:2], *[1] * d, *delta.shape[2:]))
    pieces = xp.broadcast_to(share, (*delta.shape[:2], *kernel, *delta.shape[2:]))
    return _scatter(xp, pieces, shape, stride, (0,) * d)
'''.strip()


def _window_word(geometry: Geometry) -> str:
    return "×".join(map(str, geometry.kernel))
