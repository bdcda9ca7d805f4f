"""The lecture's "why": BP1–BP4 derived from the path sum on the network at hand, why backpropagation is
fast (paths counted against the work of computing each δ once), and Mazur's intermediate step
∂E/∂out_h = Σ_o ∂E_o/∂out_h. Each function takes the plan builder and gives blocks or a section.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol

import sympy as sp

from ..core.chain import count_paths
from ..core.network import LOSS_SYMBOL, Layer
from ..core.rules import LayerMap
from ..present.equations import EquationChain, Formula, Grouped, Numbers, Partial, Product, Value, product
from .plan import Block, Count, Equations, Line, Math, Num, Paragraph, Section, Text, say

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..core.network import Network


class _Builder(Protocol):
    """What these sections read of the lecture's builder (:class:`derive.lecture.build._Builder`)."""

    net: Network
    memo: dict[sp.Symbol, int]

    @property
    def exact(self) -> Mapping[sp.Symbol, float]: ...

    @property
    def point(self) -> Mapping[sp.Symbol, float]: ...

    def is_output(self, layer: Layer) -> bool: ...


REFERENCE_SIZES = (784, 256, 256, 10)  # the network "why it is fast" compares with: thousands of paths a weight
MAX_COUNTED_PARAMETERS = 2000  # above this, paths are counted once per layer (every weight of a dense layer alike)


# -- BP1–BP4 from the path sum ------------------------------------------------------------


def bp_derivation(b: _Builder) -> list[Block]:
    """Each of BP1–BP4 as the chain rule on this network, the paths grouped as the equation groups them."""
    net = b.net
    out = net.output_layer
    o = out.neurons[0]
    assert o.net is not None and o.delta is not None
    blocks: list[Block] = [Paragraph((say("bp_why"),))]
    # BP1: the output δ (one path through its own out; a softmax: through every output)
    if isinstance(out.rule, LayerMap):
        terms = tuple((Partial(LOSS_SYMBOL, m.out), Partial(m.out, o.net)) for m in out.neurons)
        bp1 = EquationChain(o.delta, (Product((Partial(LOSS_SYMBOL, o.net),)), Grouped(terms)))
        blocks.append(Paragraph((say("bp_why1_softmax", net=Math(o.net)),)))
    else:
        bp1 = EquationChain(
            o.delta,
            (
                Product((Partial(LOSS_SYMBOL, o.net),)),
                Product((Partial(LOSS_SYMBOL, o.out), Partial(o.out, o.net))),
            ),
        )
        blocks.append(Paragraph((say("bp_why1", net=Math(o.net), out=Math(o.out)),)))
    blocks.append(Equations((Line(bp1),)))
    # BP2: the paths from a hidden net grouped by the net of the layer above they pass through
    if len(net.layers) > 2:
        hidden = net.layers[-2]
        h = hidden.neurons[0]
        assert h.net is not None and h.delta is not None
        groups = tuple((Partial(LOSS_SYMBOL, m.net), Partial(m.net, h.out)) for m in out.neurons if m.net is not None)
        expr = net.delta_definitions[h.delta]
        bp2 = EquationChain(
            h.delta,
            (
                Product((Partial(LOSS_SYMBOL, h.net),)),
                Grouped(groups, (Partial(h.out, h.net),)),
                Formula(expr),
            ),
        )
        blocks.append(Paragraph((say("bp_why2", net=Math(h.net), out=Math(h.out), local=Math(Partial(h.out, h.net))),)))
        blocks.append(Equations((Line(bp2),)))
    # BP3 and BP4: a bias enters its net with coefficient 1, a weight with the output it carries
    w = out.weights[0][0]
    bias = out.biases[0]
    lines = []
    if bias is not None:
        shared = out.spec.bias.kind == "shared"
        lines.append(
            Line(
                EquationChain(
                    Partial(LOSS_SYMBOL, bias),
                    (
                        Grouped(tuple((Partial(LOSS_SYMBOL, m.net), Partial(m.net, bias)) for m in out.neurons))
                        if shared
                        else Product((Partial(LOSS_SYMBOL, o.net), Partial(o.net, bias))),
                        Formula(sp.Add(*out.deltas) if shared else o.delta),
                    ),
                )
            )
        )
    src = net.layers[-2].neurons[0].out
    lines.append(
        Line(
            EquationChain(
                Partial(LOSS_SYMBOL, w),
                (Product((Partial(LOSS_SYMBOL, o.net), Partial(o.net, w))), Formula(src * o.delta)),
            )
        )
    )
    blocks.append(
        Paragraph((say("bp_why34_shared" if bias is not None and out.spec.bias.kind == "shared" else "bp_why34"),))
    )
    blocks.append(Equations(tuple(lines)))
    return blocks


# -- why backpropagation is fast ------------------------------------------------------------


def path_work(sizes: tuple[int, ...]) -> tuple[int, int, int]:
    """For a dense network of these layer sizes (no softmax): (paths from a first-layer weight to E, factors on
    each, multiplications to get every weight's gradient path by path)."""
    total = 0
    first_paths = first_factors = 0
    top = len(sizes) - 1
    for i in range(1, len(sizes)):
        paths = math.prod(sizes[i + 1 :])
        factors = 2 * (top - i) + 3
        total += sizes[i] * sizes[i - 1] * paths * (factors - 1)
        if i == 1:
            first_paths, first_factors = paths, factors
    return first_paths, first_factors, total


def backprop_work(sizes: tuple[int, ...]) -> int:
    """Multiplications of one backward pass: each output δ (∂E/∂out · f′), each hidden δ (its sum over the layer
    above, times f′), each weight's gradient (δ · out)."""
    work = sizes[-1]  # the output δs
    for i in range(1, len(sizes) - 1):
        work += sizes[i] * (sizes[i + 1] + 1)
    return work + sum(sizes[i] * sizes[i - 1] for i in range(1, len(sizes)))


def fast_section(b: _Builder) -> Section:
    """The network's own numbers: paths of a first-layer weight, against the work of computing each δ once."""
    net = b.net
    first = net.layers[1]
    w = next((p for row in first.weights for p in row), first.weights[0][0])
    paths = count_paths(net, w, b.memo)
    factors = 2 * (len(net.layers) - 2) + 3
    weights = [(layer, p) for layer in net.layers[1:] for row in layer.weights for p in row]
    total = 0
    if len(weights) <= MAX_COUNTED_PARAMETERS:
        for layer, p in weights:
            total += count_paths(net, p, b.memo) * (2 * (len(net.layers) - 1 - layer.index) + 2)
    else:
        for layer in net.layers[1:]:
            p = layer.weights[0][0]
            count = layer.size * len(layer.weights[0])
            total += count * count_paths(net, p, b.memo) * (2 * (len(net.layers) - 1 - layer.index) + 2)
    sizes = tuple(layer.size for layer in net.layers)
    bp = backprop_work(sizes)
    forward = sum(sizes[i] * sizes[i - 1] for i in range(1, len(sizes)))  # one product per weight
    n = len(weights)
    blocks: list[Block] = [
        Paragraph(
            (
                say(
                    "fast_paths",
                    weight=Math(w),
                    along=say("fast_along", paths=paths, factors=factors)
                    if paths > 1
                    else say("fast_along_one", factors=factors),
                    mults=paths * (factors - 1),
                    n=n,
                    total=total,
                ),
            )
        ),
        Paragraph(
            (
                say("fast_deltas" if len(net.layers) > 2 else "fast_deltas_no_hidden", bp=bp, n=n, forward=forward),
                say("fast_ratio", ratio=_times(total / bp)) if total > 1.5 * bp else say("fast_small"),
            )
        ),
    ]
    if sizes != REFERENCE_SIZES:
        ref_paths, _, ref_total = path_work(REFERENCE_SIZES)
        ref_bp = backprop_work(REFERENCE_SIZES)
        blocks.append(
            Paragraph(
                (
                    say(
                        "fast_reference",
                        paths=ref_paths,
                        total=Num(float(ref_total), 3),
                        bp=ref_bp,
                        ratio=_times(ref_total / ref_bp),
                    ),
                )
            )
        )
    return Section(say("fast"), tuple(blocks), key="fast")


def _times(ratio: float) -> Count | Num:
    """A ratio as a reader says it: 2.5 times, 9,144 times."""
    return Count(round(ratio)) if ratio >= 10 else Num(ratio, 2)


# -- Mazur's intermediate step -------------------------------------------------------------


def error_symbol(layer: Layer, j: int) -> sp.Symbol:
    """E_o1: output j's own share of the loss, spelled with the neuron's name (or its number)."""
    label = layer.neurons[j].label
    name = label if label.isalnum() else str(j + 1)
    return sp.Symbol(f"E_{{{name}}}", real=True)


def mazur_step(b: _Builder, layer: Layer, j: int) -> list[Block]:
    """∂E/∂out_h = Σ_o ∂E_o/∂out_h, each part δ_o · w, then δ_h = ∂E/∂out_h · ∂out_h/∂net_h (Mazur's way)."""
    net = b.net
    above = net.layers[layer.index + 1]
    if not b.is_output(above) or isinstance(above.rule, LayerMap) or above.size < 2:
        return []
    h = layer.neurons[j]
    assert h.net is not None and h.delta is not None
    dE_dout = Partial(LOSS_SYMBOL, h.out)
    parts = []
    values = []
    lines = []
    for k, (m, row) in enumerate(zip(above.neurons, above.weights)):
        assert m.net is not None and m.delta is not None
        e = error_symbol(above, k)
        part = Partial(e, h.out)
        parts.append(part)
        value = b.point[m.delta] * b.exact[row[j]]
        values.append(value)
        chain = product(
            part,
            (Partial(e, m.net), Partial(m.net, h.out)),
            (b.point[row[j]], b.point[m.delta]),  # in the order the formula w·δ is written
            value,
        )
        # ∂E_o/∂net_o is δ_o: the other outputs' errors do not contain net_o
        lines.append(Line(EquationChain(part, (chain.sides[0], Formula(m.delta * row[j]), *chain.sides[1:]))))
    total = sum(values)
    lines.insert(0, Line(EquationChain(dE_dout, (Grouped(tuple((p,) for p in parts)),))))
    lines.append(Line(EquationChain(dE_dout, (Numbers(tuple(values), "+"), Value(total)))))
    slope = b.point[h.delta] / total if total else None
    if slope is not None:
        lines.append(
            Line(
                EquationChain(
                    h.delta,
                    (Product((dE_dout, Partial(h.out, h.net))), Numbers((total, slope)), Value(b.point[h.delta])),
                )
            )
        )
    names = [error_symbol(above, k) for k in range(above.size)]
    return [
        Paragraph(
            (
                say(
                    "mazur_step",
                    out=Math(h.out),
                    first=Math(names[0]),
                    sum=Math(sp.Add(*names, evaluate=False)),
                    name=Text(above.neurons[0].label),
                ),
            )
        ),
        Equations(tuple(lines)),
        Paragraph((say("mazur_step_after", delta=Math(h.delta)),)),
    ]


__all__ = ["Count", "backprop_work", "bp_derivation", "fast_section", "mazur_step", "path_work"]
