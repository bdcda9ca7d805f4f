"""Named mistakes: a wrong claim recomputed the mistaken way, never guessed from the size of its error.

Each rule takes a claimed quantity and gives the values the classic mistakes would have printed for it
(:class:`Candidate`); a claim that one of them reproduces (rounded or truncated to the claim's digits) is
diagnosed with its code. The codes, in the order they are tried (the first that reproduces a claim wins;
the rounding codes come last and are decided in :mod:`derive.check.claims`):

====================================  ===============================================================
``one_path``                          a gradient that is one path's contribution only
``missing_activation_derivative``     a chain product missing one f′ factor
``sign``                              an update with + instead of −, or a δ (or gradient) with its sign flipped
``loss_factor``                       E or a gradient off by the ½ of half_sse, or by 2
``updated_weights_too_early``         a quantity after an update computed with the layer above already updated
``wrong_sample``                      another sample's value (a batch)
``transposed_weight``                 the gradient of the weight with its indices swapped (w_kj for w_jk)
``no_learning_rate``                  an update p − ∂E/∂p, the learning rate left out
``wrong_input``                       what the wrong numbers of the other claims give
``rounded_intermediate``              what the rounded numbers of the other claims give
``truncated``                         a value that matches only when truncated
``too_few_digits``                    fewer digits than required
====================================  ===============================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sympy as sp

    from ..core.network import Network, Neuron
    from ..core.worked import Worked
    from .quantities import Quantity


class _Values(Protocol):
    """What a mistake is recomputed from: ``derive check``'s computed values (:class:`derive.check.claims._Values`)."""

    model: Worked
    network: Network
    reduction: str
    points: dict[int, tuple[Mapping[sp.Symbol, float], ...]]

    @property
    def samples(self) -> int: ...

    def value(self, q: Quantity, point: Mapping[sp.Symbol, float] | None = None) -> float: ...

    def _neuron(self, label: str) -> Neuron: ...

    def _output(self, label: str) -> Neuron: ...


CODES = (
    "one_path",
    "missing_activation_derivative",
    "sign",
    "loss_factor",
    "updated_weights_too_early",
    "wrong_sample",
    "transposed_weight",
    "no_learning_rate",
    "wrong_input",
    "rounded_intermediate",
    "truncated",
    "too_few_digits",
)
SQUARED_LOSSES = ("half_sse", "sse", "mse")
MAX_MISTAKE_PATHS = 16  # gradients with more paths are not searched path by path
MAX_TOO_EARLY_PARAMETERS = 256  # the layer-by-layer update is replayed by hand for networks worked by hand


@dataclass(frozen=True)
class Candidate:
    """A value a named mistake gives for a quantity, with what it was (for the sentence)."""

    code: str
    value: float
    detail: str  # "the path through out_o1", "without ∂out_o1/∂net_o1", …


def reproduces(claimed: Decimal, value: float) -> bool:
    """Whether the claim is ``value`` rounded or truncated to its digits (within float64's rounding)."""
    from .exact import unit

    if not math.isfinite(value):
        return False
    v = Decimal(value)
    u = unit(claimed)
    slack = abs(v) * Decimal("1e-12")
    if abs(v - claimed) <= u / 2 + slack:
        return True
    if claimed == 0:
        return False  # a 0 with no significant digit is never a truncation
    if claimed.is_signed():
        return claimed - u - slack < v <= claimed + slack
    return claimed - slack <= v < claimed + u + slack


def candidates(q: Quantity, values: _Values) -> Iterator[Candidate]:
    """Every named mistake's value for the quantity, in the order of :data:`CODES`."""
    from .quantities import Kind

    net = values.network
    symbol = _differentiated(q, values)
    # a batch through max pools routes each sample by its own winners: no path is walked in one network
    if symbol is not None and not (net.has_max_pools and values.samples > 1):
        yield from _paths(q, symbol, values)
    yield from _sign(q, values)
    yield from _loss_factor(q, values)
    if q.step == 1 and q.kind in (Kind.VALUE, Kind.ERROR) and values.samples == 1:
        yield from _too_early(q, values)
    if q.sample and values.samples > 1:
        for n in range(1, values.samples + 1):
            if n != q.sample:
                yield Candidate("wrong_sample", values.value(replace(q, sample=n)), f"sample {n}'s")
    if q.kind is Kind.GRAD and net.info[q.wrt].kind == "weight":
        swapped = _transposed(q.wrt, values)
        if swapped is not None:
            yield Candidate("transposed_weight", values.value(replace(q, wrt=swapped)), f"∂E/∂{swapped}'s")
    if q.kind is Kind.VALUE and q.step >= 1 and net.info.get(q.of) and net.info[q.of].kind in ("weight", "bias"):
        updated = _updated(q, values, rate=1.0)
        if updated is not None:
            yield Candidate("no_learning_rate", updated, "p − ∂E/∂p")


def _differentiated(q: Quantity, values: _Values) -> sp.Symbol | None:
    """The symbol ∂E/∂· is taken by: a gradient's parameter, a δ's net."""
    from .quantities import Kind

    net = values.network
    if q.kind is Kind.GRAD:
        return net.symbols[q.wrt]
    if q.kind is Kind.DELTA:
        return values._neuron(q.of).net
    return None


def _points(q: Quantity, values: _Values) -> list[Mapping[sp.Symbol, float]]:
    points = values.points[q.step]
    if q.sample:
        return [points[q.sample - 1]]
    return list(points)


def _reduce(parts: list[float], values: _Values, q: Quantity) -> float:
    if len(parts) == 1 or q.sample:
        return parts[0]
    total = math.fsum(parts)
    return total / len(parts) if values.reduction == "mean" else total


def _paths(q: Quantity, symbol: sp.Symbol, values: _Values) -> Iterator[Candidate]:
    """one_path (each path's term alone) and missing_activation_derivative (one f′ left out of every path)."""
    import sympy as sp

    from ..core.chain import derive, evaluate

    net = values.network
    derivations = [derive(net, symbol, p, max_paths=MAX_MISTAKE_PATHS) for p in _points(q, values)]
    if not derivations[0].paths:
        return
    paths = [d.paths for d in derivations]
    if len(paths[0]) > 1:
        for i, path in enumerate(paths[0]):
            terms = [float(v) for ps in paths if (v := ps[i].value) is not None]
            if len(terms) == len(paths):
                via = " → ".join(s.name for s in reversed(path.nodes))
                yield Candidate("one_path", _reduce(terms, values, q), f"the path {via}")
    # an activation's derivative ∂out/∂net, left out wherever it appears
    kinds = net.info
    derivatives = []
    for f in paths[0][0].factors if len(paths[0]) == 1 else [f for p in paths[0] for f in p.factors]:
        key = (f.of, f.wrt)
        of_info, wrt_info = kinds.get(f.of.name), kinds.get(f.wrt.name)  # E is no symbol of the spec
        if of_info and wrt_info and of_info.kind == "out" and wrt_info.kind == "net" and key not in derivatives:
            derivatives.append(key)
    for of, wrt in derivatives:
        sums = []
        for d, point in zip(derivations, _points(q, values)):
            total = sp.S.Zero
            for path in d.paths:
                kept = [f.expr for f in path.factors if (f.of, f.wrt) != (of, wrt)]
                value = evaluate(sp.Mul(*kept), point)
                if value is None:
                    return
                total += sp.Float(value, 17)
            sums.append(float(total))
        yield Candidate("missing_activation_derivative", _reduce(sums, values, q), f"without ∂{of.name}/∂{wrt.name}")


def _sign(q: Quantity, values: _Values) -> Iterator[Candidate]:
    from .quantities import Kind

    net = values.network
    if q.kind in (Kind.DELTA, Kind.GRAD, Kind.PARTIAL):
        yield Candidate("sign", -values.value(q), "the sign flipped")
    elif q.kind is Kind.VALUE and q.step >= 1 and net.info.get(q.of) and net.info[q.of].kind in ("weight", "bias"):
        updated = _updated(q, values, gradient_scale=-1.0)
        if updated is not None:
            yield Candidate("sign", updated, "p + η·∂E/∂p")


def _loss_factor(q: Quantity, values: _Values) -> Iterator[Candidate]:
    from .quantities import Kind

    if values.model.spec.loss.kind not in SQUARED_LOSSES:
        return
    net = values.network
    if (q.kind is Kind.VALUE and q.of == "E") or q.kind in (Kind.ERROR, Kind.GRAD, Kind.PARTIAL, Kind.DELTA):
        v = values.value(q)
        yield Candidate("loss_factor", 2 * v, "twice the value")
        yield Candidate("loss_factor", v / 2, "half the value")
    elif q.kind is Kind.VALUE and q.step >= 1 and net.info.get(q.of) and net.info[q.of].kind in ("weight", "bias"):
        for scale, detail in ((2.0, "a gradient twice too large"), (0.5, "a gradient half too small")):
            updated = _updated(q, values, gradient_scale=scale)
            if updated is not None:
                yield Candidate("loss_factor", updated, detail)


def _updated(q: Quantity, values: _Values, gradient_scale: float = 1.0, rate: float | None = None) -> float | None:
    """p@N from p@(N−1) by a stateless optimiser, with the gradient scaled, or another learning rate."""
    import sympy as sp

    from ..core.chain import evaluate
    from ..core.optimizer import Optimizer
    from .quantities import Kind, Quantity

    spec = values.model.spec
    optimizer = Optimizer.of(spec)
    if optimizer.stateful:
        return None
    if rate is not None:
        optimizer = replace(optimizer, learning_rate=rate)
    kind = values.network.info[q.of].kind
    if not optimizer.updates(kind == "bias"):
        return None
    before = values.value(replace(q, step=q.step - 1))
    gradient = values.value(Quantity(Kind.GRAD, "", q.of, q.step - 1))
    updated = optimizer.update(sp.Float(before), sp.Float(gradient_scale * gradient), kind == "bias")
    if updated is None:
        return None
    value = evaluate(updated, {})
    return None if value is None else float(value)


def _transposed(name: str, values: _Values) -> str | None:
    """The weight at (k, j) of the layer holding ``name`` at (j, k), when there is one and it is another."""
    net = values.network
    info = net.info[name]
    layer = net.layers[info.layer]
    if layer.spec.kind != "dense":  # a kernel's indices are not (into, from)
        return None
    j, k = info.row, info.col
    if j is None or k is None or j == k or k >= len(layer.weights) or j >= len(layer.weights[k]):
        return None
    other = layer.weights[k][j]
    return other.name if other is not None else None


def _too_early(q: Quantity, values: _Values) -> Iterator[Candidate]:
    """After one update in which each layer's δs were computed with the weights above already updated."""
    import sympy as sp

    from ..core.chain import derive, evaluate, exact_point
    from ..core.network import LOSS_SYMBOL
    from ..core.optimizer import Optimizer

    net = values.network
    optimizer = Optimizer.of(values.model.spec)
    if optimizer.stateful or len(net.layers) < 3 or len(net.parameters) > MAX_TOO_EARLY_PARAMETERS:
        return
    start = values.points[0][0]
    known: dict[sp.Symbol, float] = {}
    updated: dict[sp.Symbol, float] = {}
    for layer in reversed(net.layers[1:]):
        point = _Layered(start, {**known, **updated})
        for neuron in layer.neurons:
            if neuron.delta is not None and not layer.is_output:
                value = evaluate(net.delta_definitions[neuron.delta], point)
                if value is None:
                    return
                known[neuron.delta] = float(value)
        point = _Layered(start, {**known, **updated})
        for p in net.parameters:
            if net.info[p.name].layer != layer.index:
                continue
            gradient = evaluate(derive(net, p).delta_expression, point)
            if gradient is None:
                return
            new = optimizer.update(sp.Float(start[p]), sp.Float(float(gradient)), net.info[p.name].kind == "bias")
            value = None if new is None else evaluate(new, {})
            if value is None:
                return
            updated[p] = float(value)
    given = {
        s: start[s] for s in (*net.input_layer.outs, *(n.target for n in net.output_layer.neurons)) if s is not None
    }
    after = exact_point(net, {**given, **updated})
    from .quantities import Kind

    if q.kind is Kind.VALUE and q.of == "E":
        value = after.get(LOSS_SYMBOL)
    elif q.kind is Kind.ERROR:
        value = evaluate(net.output_errors[values._output(q.of).out], after)
    else:
        symbol = net.symbols[q.of]
        value = updated.get(symbol, after.get(symbol))
    if value is not None:
        yield Candidate("updated_weights_too_early", float(value), "the δs below from the updated weights above")


class _Layered(dict):
    """A float point with some values replaced (updated weights, recomputed δs)."""

    def __init__(self, under: Mapping[sp.Symbol, float], over: Mapping[sp.Symbol, float]) -> None:
        super().__init__(over)
        self.under = under

    def __missing__(self, key: sp.Symbol) -> float:
        return self.under[key]

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.under

    def keys(self):  # type: ignore[no-untyped-def]
        return _Keys(self)


class _Keys:
    def __init__(self, mapping: _Layered) -> None:
        self.mapping = mapping

    def __ge__(self, other: object) -> bool:
        return all(k in self.mapping for k in other)  # type: ignore[attr-defined]

    def __le__(self, other: object) -> bool:  # pragma: no cover - not used
        return NotImplemented
