"""A :class:`Derivation`: ∂E/∂q by the chain rule, as plain data.

The network is a graph: a weight feeds a net, a net feeds its out (or, through
softmax, every out of its layer), an out feeds the next layer's nets or the
loss E. Each edge carries a *factor*, the partial derivative of its head with
respect to its tail. By the chain rule, ∂E/∂q is the sum over every path from
q to E of the product of the factors along it (000: "case 1" is one path,
"case 2" a sum over paths). When there are many paths, the same sum is folded
into δ form, ∂E/∂q = Σ_j δ_j · ∂net_j/∂q, where each δ is defined once from the
layer above (BP2): that is what keeps deriving every gradient linear in size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

import sympy as sp

from .errors import DeriveError, TooLargeError
from .network import LOSS_SYMBOL, Network, Neuron

MAX_PATHS = 16  # above this, show the δ form instead of listing paths
MAX_CLOSED_FORM_NODES = 60_000


@dataclass(frozen=True)
class Factor:
    """One partial derivative ∂of/∂wrt on a path, its local form and value."""

    of: sp.Symbol
    wrt: sp.Symbol
    expr: sp.Expr
    value: float | None


@dataclass(frozen=True)
class Path:
    """One path from the quantity to E; its term is the product of its factors."""

    factors: tuple[Factor, ...]  # from E down to the quantity, as Mazur writes them

    @property
    def nodes(self) -> tuple[sp.Symbol, ...]:
        """E ← … ← quantity."""
        return (self.factors[0].of, *(f.wrt for f in self.factors))

    @property
    def expr(self) -> sp.Expr:
        return sp.Mul(*(f.expr for f in self.factors))

    @property
    def value(self) -> float | None:
        product = 1.0
        for f in self.factors:
            if f.value is None:
                return None
            product *= f.value
        return product


@dataclass(frozen=True)
class DeltaTerm:
    """One term δ_j · ∂net_j/∂q of the δ form, with δ_j's own definition (BP1/BP2)."""

    neuron: Neuron
    definition: sp.Expr  # δ_j in the next layer's δ symbols, or in outs/targets at the output
    delta_value: float | None
    local: Factor  # ∂net_j/∂q

    @property
    def delta(self) -> sp.Symbol:
        assert self.neuron.delta is not None
        return self.neuron.delta

    @property
    def expr(self) -> sp.Expr:
        return self.delta * self.local.expr

    @property
    def value(self) -> float | None:
        if self.delta_value is None or self.local.value is None:
            return None
        return self.delta_value * self.local.value


@dataclass(frozen=True)
class Derivation:
    """∂E/∂quantity: its paths (or δ terms), its local expression and its value."""

    network: Network = field(repr=False, compare=False)
    quantity: sp.Symbol
    path_count: int
    paths: tuple[Path, ...]  # listed when path_count ≤ MAX_PATHS
    terms: tuple[DeltaTerm, ...]  # the δ form, always available
    value: float | None
    point: dict[sp.Symbol, float] | None = field(default=None, repr=False, compare=False)

    @property
    def form(self) -> str:
        """ "paths" when the paths are listed, "delta" when folded into δ form."""
        return "paths" if self.paths else "delta"

    @property
    def expression(self) -> sp.Expr:
        """∂E/∂quantity in local symbols: the sum of path products, or Σ δ·factor."""
        if self.paths:
            return sp.Add(*(p.expr for p in self.paths))
        return sp.Add(*(t.expr for t in self.terms))

    @property
    def delta_expression(self) -> sp.Expr:
        """Σ δ_j · ∂net_j/∂q; for an output's out, its single factor ∂E/∂out."""
        if not self.terms:
            return self.expression
        return sp.Add(*(t.expr for t in self.terms))

    def evaluate(self, expr: sp.Expr) -> float | None:
        """The value of an expression over this network's symbols at the spec's numbers."""
        return evaluate(expr, self.point)

    def closed_form(self, limit: int = MAX_CLOSED_FORM_NODES) -> sp.Expr:
        """∂E/∂quantity written out in inputs, weights, biases and targets only.

        Raises :class:`TooLargeError` when the expression would have more than
        ``limit`` nodes (it grows like width**depth).
        """
        return expand_definitions(self.network, self.delta_expression, limit, self.quantity.name)


# --------------------------------------------------------------------------
# numbers


def evaluate(expr: sp.Expr, point: dict[sp.Symbol, float] | None) -> float | None:
    """Substitute numbers for every symbol and return a float, or None without numbers."""
    if point is None:
        return None
    needed = expr.free_symbols
    if not needed <= point.keys():
        return None
    value = expr.xreplace({s: sp.Float(point[s], 17) for s in needed})
    try:
        return float(value)
    except TypeError:
        return None


# --------------------------------------------------------------------------
# the graph


def _successors(net: Network, node: sp.Symbol) -> list[tuple[sp.Symbol, sp.Expr]]:
    """(head, ∂head/∂node) for each edge leaving node."""
    info = net.info[node.name]
    layers = net.layers
    if info.kind in ("out", "input"):
        layer_index = info.layer
        if layer_index == len(layers) - 1:
            return [(LOSS_SYMBOL, net.dE_dout[node])]
        nxt = layers[layer_index + 1]
        assert info.row is not None
        return [(n.net, row[info.row]) for n, row in zip(nxt.neurons, nxt.weights) if n.net is not None]
    if info.kind == "net":
        neuron = net.neuron_of(node)
        edges = [(m.out, net.dout_dnet(m.out, node)) for m in net.feeds(neuron)]
        return [(head, d) for head, d in edges if d != 0]
    layer = layers[info.layer]
    prev = layers[info.layer - 1]
    if info.kind == "weight":
        assert info.row is not None and info.col is not None
        head = layer.neurons[info.row].net
        assert head is not None
        return [(head, prev.neurons[info.col].out)]
    if info.kind == "bias":
        return [(n.net, sp.S.One) for n, b in zip(layer.neurons, layer.biases) if b == node and n.net is not None]
    raise DeriveError(f"cannot differentiate with respect to {node.name}")  # pragma: no cover


def count_paths(net: Network, node: sp.Symbol, memo: dict[sp.Symbol, int] | None = None) -> int:
    """How many paths lead from node to E (counted, not listed)."""
    memo = {} if memo is None else memo
    if node == LOSS_SYMBOL:
        return 1
    if node not in memo:
        memo[node] = sum(count_paths(net, head, memo) for head, _ in _successors(net, node))
    return memo[node]


def _walk(net: Network, node: sp.Symbol) -> Iterator[list[tuple[sp.Symbol, sp.Symbol, sp.Expr]]]:
    """Every path from node to E as edges (tail, head, factor), tail first."""
    if node == LOSS_SYMBOL:
        yield []
        return
    for head, factor in _successors(net, node):
        for rest in _walk(net, head):
            yield [(node, head, factor), *rest]


# --------------------------------------------------------------------------
# deriving


def derive(
    net: Network,
    quantity: sp.Symbol,
    point: dict[sp.Symbol, float] | None = None,
    max_paths: int = MAX_PATHS,
    memo: dict[sp.Symbol, int] | None = None,
) -> Derivation:
    """Derive ∂E/∂quantity for a weight, bias, input, net or out."""
    n_paths = count_paths(net, quantity, memo)
    paths: tuple[Path, ...] = ()
    if n_paths <= max_paths:
        listed = []
        for edges in _walk(net, quantity):
            factors = tuple(
                Factor(of=head, wrt=tail, expr=factor, value=evaluate(factor, point))
                for tail, head, factor in reversed(edges)
            )
            listed.append(Path(factors))
        paths = tuple(listed)
    terms = _delta_terms(net, quantity, point)
    derivation = Derivation(net, quantity, n_paths, paths, terms, None, point)
    if point is None:
        return derivation
    return replace(derivation, value=evaluate(derivation.expression, point))


def _delta_terms(net: Network, quantity: sp.Symbol, point: dict[sp.Symbol, float] | None) -> tuple[DeltaTerm, ...]:
    """∂E/∂q = Σ_j δ_j · ∂net_j/∂q over the nets q feeds directly (for a net, q is δ itself)."""
    info = net.info[quantity.name]
    if info.kind == "net":
        neuron = net.neuron_of(quantity)
        one = Factor(of=quantity, wrt=quantity, expr=sp.S.One, value=1.0)
        return (_term(net, neuron, one, point),)
    terms = []  # stays empty for an output's out: ∂E/∂out_o is one factor, no δ in it
    for head, factor in _successors(net, quantity):
        if head == LOSS_SYMBOL:
            continue
        neuron = net.neuron_of(head)
        local = Factor(of=head, wrt=quantity, expr=factor, value=evaluate(factor, point))
        terms.append(_term(net, neuron, local, point))
    return tuple(terms)


def _term(net: Network, neuron: Neuron, local: Factor, point: dict[sp.Symbol, float] | None) -> DeltaTerm:
    assert neuron.delta is not None
    definition = net.delta_definitions[neuron.delta]
    delta_value = point.get(neuron.delta) if point is not None else None
    return DeltaTerm(neuron, definition, delta_value, local)


def derive_all(net: Network, point: dict[sp.Symbol, float] | None = None) -> dict[str, Derivation]:
    """A derivation for every weight and bias (biases too when they are not trained)."""
    memo: dict[sp.Symbol, int] = {}
    return {p.name: derive(net, p, point, memo=memo) for p in net.parameters}


# --------------------------------------------------------------------------
# closed forms


def _tree_size(expr: sp.Basic, sizes: dict[sp.Symbol, int]) -> int:
    if isinstance(expr, sp.Symbol):
        return sizes.get(expr, 1)
    return 1 + sum(_tree_size(a, sizes) for a in expr.args)


class _Expander:
    """Substitutes definitions (net, out, δ) until only spec symbols remain."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.definitions: dict[sp.Symbol, sp.Expr] = {}
        for defs in (net.net_definitions, net.out_definitions, net.delta_definitions):
            self.definitions.update(defs)
        self.memo: dict[sp.Symbol, sp.Expr] = {}

    @cached_property
    def sizes(self) -> dict[sp.Symbol, int]:
        sizes: dict[sp.Symbol, int] = {}
        net = self.net
        for layer in net.layers[1:]:
            for n in layer.neurons:
                assert n.net is not None
                sizes[n.net] = _tree_size(net.net_definitions[n.net], sizes)
            for n in layer.neurons:
                sizes[n.out] = _tree_size(net.out_definitions[n.out], sizes)
        for layer in reversed(net.layers[1:]):
            for n in layer.neurons:
                assert n.delta is not None
                sizes[n.delta] = _tree_size(net.delta_definitions[n.delta], sizes)
        return sizes

    def full(self, symbol: sp.Symbol) -> sp.Expr:
        if symbol not in self.definitions:
            return symbol
        if symbol not in self.memo:
            definition = self.definitions[symbol]
            self.memo[symbol] = definition.xreplace({s: self.full(s) for s in definition.free_symbols})
        return self.memo[symbol]


def expand_definitions(net: Network, expr: sp.Expr, limit: int, label: str = "the expression") -> sp.Expr:
    """``expr`` with every net, out and δ replaced by its definition, recursively."""
    expander = _Expander(net)
    size = _tree_size(expr, expander.sizes)
    if size > limit:
        raise TooLargeError(
            f"the closed form of ∂E/∂{label} would have about {size:,} nodes (limit {limit:,})",
            hint="it grows like width**depth; the δ form (the default output) stays small",
            size=size,
            limit=limit,
        )
    return expr.xreplace({s: expander.full(s) for s in expr.free_symbols})
