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

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TypeAlias

import sympy as sp

from .errors import DeriveError, TooLargeError
from .network import LOSS_SYMBOL, Network, Neuron

MAX_PATHS = 16  # above this, show the δ form instead of listing paths
MAX_CLOSED_FORM_NODES = 60_000
EXACT_DIGITS = 30  # digits of a shown factor's value, beyond those the nets' sizes ask for
MAX_EXACT_DIGITS = 4000  # enough for 1 − σ(net) with |net| up to ~4500

# A shown value: a float, or a sympy Float when it lies beyond float64's range
# (∂E/∂out = −1/out with out = e^−2000 is −e^2000: a number, kept and shown).
Number: TypeAlias = "float | sp.Float"


@dataclass(frozen=True)
class Factor:
    """One partial derivative ∂of/∂wrt on a path, its local form and value."""

    of: sp.Symbol
    wrt: sp.Symbol
    expr: sp.Expr
    value: Number | None


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
    def value(self) -> Number | None:
        product: Number = sp.S.One
        for f in self.factors:
            if f.value is None:
                return None
            product *= f.value
        return _number(sp.sympify(product))


@dataclass(frozen=True)
class DeltaTerm:
    """One term δ_j · ∂net_j/∂q of the δ form, with δ_j's own definition (BP1/BP2)."""

    neuron: Neuron
    definition: sp.Expr  # δ_j in the next layer's δ symbols, or in outs/targets at the output
    delta_value: Number | None
    local: Factor  # ∂net_j/∂q

    @property
    def delta(self) -> sp.Symbol:
        assert self.neuron.delta is not None
        return self.neuron.delta

    @property
    def expr(self) -> sp.Expr:
        return self.delta * self.local.expr

    @property
    def value(self) -> Number | None:
        if self.delta_value is None or self.local.value is None:
            return None
        return _number(sp.sympify(self.delta_value) * self.local.value)


@dataclass(frozen=True)
class Derivation:
    """∂E/∂quantity: its paths (or δ terms), its local expression and its value."""

    network: Network = field(repr=False, compare=False)
    quantity: sp.Symbol
    path_count: int
    paths: tuple[Path, ...]  # listed when path_count ≤ MAX_PATHS
    terms: tuple[DeltaTerm, ...]  # the δ form, always available
    value: Number | None  # exact, rounded once (else the compiled passes' δ form)
    point: Mapping[sp.Symbol, Number] | None = field(default=None, repr=False, compare=False)  # exact, for showing

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

    def evaluate(self, expr: sp.Expr) -> Number | None:
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


def evaluate(expr: sp.Expr, point: Mapping[sp.Symbol, Number] | None) -> Number | None:
    """Substitute numbers for every symbol: a float (a sympy Float beyond float64's range), or None.

    The arithmetic is sympy's, at the precision of the point's numbers (17 digits for
    floats, more in an :func:`exact_point`), with no limit on the exponent: a product
    e^2000 · e^−2000 is 1, not inf · 0. None without numbers, or where the value is
    not a number (a division by an exact 0).
    """
    if point is None:
        return None
    needed = expr.free_symbols
    if not needed <= point.keys():
        return None
    value = expr.xreplace({s: _sympy_number(point[s]) for s in needed})
    if not value.is_Number:
        value = value.evalf(EXACT_DIGITS)
    return _number(value)


def _sympy_number(value: Number) -> sp.Float:
    return value if isinstance(value, sp.Float) else sp.Float(value, 17)  # 17 digits hold a float exactly


def _number(value: sp.Expr) -> Number | None:
    """A float, or the sympy Float itself when float64 would turn it into inf or 0."""
    if not value.is_Number or value in (sp.nan, sp.zoo, sp.oo, -sp.oo):
        return None
    as_float = float(value)
    if not value.is_zero and (math.isinf(as_float) or abs(as_float) < 2.2250738585072014e-308):
        return sp.Float(value, 17)
    return as_float


def factor_value(net: Network, expr: sp.Expr, exact: Mapping[sp.Symbol, Number] | None) -> Number | None:
    """A factor's value at an exact point; where that is 0 or no number, recomputed with outs written in nets.

    Beyond MAX_EXACT_DIGITS, 1 − σ(net) still rounds to 0 (net = 10⁶ needs 434,000 digits):
    written in the net, a·(1 − a) is e^−net/(1 + e^−net)², which a sympy Float holds.
    """
    value = evaluate(expr, exact)
    if exact is None or (value is not None and value != 0):
        return value
    outs = {s: net.out_definitions[s] for s in expr.free_symbols if s in net.out_definitions}
    if not outs:
        return value
    in_nets = evaluate(sp.together(expr.xreplace(outs)), exact)
    return in_nets if in_nets is not None else value


def as_float(value: Number | None) -> float | None:
    """For JSON and other float-only consumers: a value beyond float64's range becomes ±inf or 0."""
    return None if value is None else float(value)


def exact_point(net: Network, point: Mapping[sp.Symbol, float]) -> dict[sp.Symbol, Number]:
    """The point's nets, outs, δs and E recomputed from its inputs, parameters and targets, for showing.

    In floats σ(40) is 1, so 1 − out is 0 and ∂E/∂out = (o − t)/(o(1 − o)) is 1/0. Here every
    number is a sympy Float with as many digits as the largest net asks for (1 − σ(net) needs
    about net/ln 10 of them) plus EXACT_DIGITS, and an exponent without limit (softmax outputs
    of e^−2000 are kept). A value that is still not a number is left out.
    """
    nets = [float(point[s]) for s in net.net_definitions if s in point]
    largest = max((abs(v) for v in nets if math.isfinite(v)), default=0.0)
    digits = min(EXACT_DIGITS + math.ceil(2 * largest / math.log(10)), MAX_EXACT_DIGITS)
    given = ("input", "weight", "bias", "target")
    exact: dict[sp.Symbol, Number] = {
        s: sp.Float(v, digits) for s, v in point.items() if s.name in net.info and net.info[s.name].kind in given
    }

    def define(symbol: sp.Symbol, definition: sp.Expr) -> None:
        if definition.free_symbols <= exact.keys():
            value = definition.xreplace({s: _sympy_number(exact[s]) for s in definition.free_symbols})
            if not value.is_Number:  # an exact 0 leaves log(2) and friends unevaluated
                value = value.evalf(digits)
            if value.is_Number and value not in (sp.nan, sp.zoo, sp.oo, -sp.oo):
                exact[symbol] = sp.Float(value, digits)  # all its digits, not rounded to a float

    for layer in net.layers[1:]:
        for n in layer.neurons:
            assert n.net is not None
            define(n.net, net.net_definitions[n.net])
        for n in layer.neurons:
            define(n.out, net.out_definitions[n.out])
    for layer in reversed(net.layers[1:]):
        for n in layer.neurons:
            assert n.delta is not None
            define(n.delta, net.delta_definitions[n.delta])
    define(LOSS_SYMBOL, net.loss_expression)
    return exact


def shown_value(expr: sp.Expr, value: float, point: dict[sp.Symbol, float]) -> float:
    """``value`` for display: a sum that cancels to rounding noise shows as 0.

    0.1 − 0.04 − 0.2 + … = −1.4e−17 in floating point; next to terms of size
    ~0.1 that is noise, and a lecture should say 0.
    """
    if not isinstance(expr, sp.Add) or value == 0:
        return value
    terms = [evaluate(term, point) for term in expr.args]
    scale = max((abs(t) for t in terms if t is not None), default=0.0)
    return 0.0 if abs(value) <= 1e-12 * scale else value


def display_point(net: Network, point: dict[sp.Symbol, float]) -> dict[sp.Symbol, float]:
    """The point with every net that cancels to rounding noise shown as 0 (for printing only)."""
    shown = dict(point)
    for symbol, definition in net.net_definitions.items():
        if symbol in shown:
            shown[symbol] = shown_value(definition, shown[symbol], point)
    return shown


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
    point: Mapping[sp.Symbol, float] | None = None,
    max_paths: int = MAX_PATHS,
    memo: dict[sp.Symbol, int] | None = None,
    exact: Mapping[sp.Symbol, Number] | None = None,
) -> Derivation:
    """Derive ∂E/∂quantity for a weight, bias, input, net or out.

    ``point`` holds the compiled passes' numbers (floats); the factors, δs and
    the value come from ``exact`` (:func:`exact_point` of it, computed here when
    not given), each rounded once, so the shown terms add up to the shown total.
    """
    if point is not None and exact is None:
        exact = exact_point(net, point)
    n_paths = count_paths(net, quantity, memo)
    paths: tuple[Path, ...] = ()
    if n_paths <= max_paths:
        listed = []
        for edges in _walk(net, quantity):
            factors = tuple(
                Factor(of=head, wrt=tail, expr=factor, value=factor_value(net, factor, exact))
                for tail, head, factor in reversed(edges)
            )
            listed.append(Path(factors))
        paths = tuple(listed)
    terms = _delta_terms(net, quantity, point, exact)
    derivation = Derivation(net, quantity, n_paths, paths, terms, None, exact)
    if point is None:
        return derivation
    # the sum of the shown terms (paths, or δ terms), exact and rounded once; where a term has no
    # value, the compiled passes' δ form, as the exported module computes it
    parts = [p.value for p in paths] if paths else [t.value for t in terms]
    value = None
    if parts and all(v is not None for v in parts):
        value = _number(sp.Add(*(_sympy_number(v) for v in parts)))
    elif not parts:  # an output's ∂E/∂out: one factor, no δ
        value = factor_value(net, derivation.expression, exact)
    if value is None:
        value = evaluate(derivation.delta_expression, point)
    return replace(derivation, value=value)


def _delta_terms(
    net: Network,
    quantity: sp.Symbol,
    point: Mapping[sp.Symbol, float] | None,
    exact: Mapping[sp.Symbol, Number] | None,
) -> tuple[DeltaTerm, ...]:
    """∂E/∂q = Σ_j δ_j · ∂net_j/∂q over the nets q feeds directly (for a net, q is δ itself)."""
    info = net.info[quantity.name]
    if info.kind == "net":
        neuron = net.neuron_of(quantity)
        one = Factor(of=quantity, wrt=quantity, expr=sp.S.One, value=1.0)
        return (_term(net, neuron, one, point, exact),)
    terms = []  # stays empty for an output's out: ∂E/∂out_o is one factor, no δ in it
    for head, factor in _successors(net, quantity):
        if head == LOSS_SYMBOL:
            continue
        neuron = net.neuron_of(head)
        local = Factor(of=head, wrt=quantity, expr=factor, value=factor_value(net, factor, exact))
        terms.append(_term(net, neuron, local, point, exact))
    return tuple(terms)


def _term(
    net: Network,
    neuron: Neuron,
    local: Factor,
    point: Mapping[sp.Symbol, float] | None,
    exact: Mapping[sp.Symbol, Number] | None,
) -> DeltaTerm:
    """δ's value is the exact one; where that cannot be had, the compiled passes' (the export's)."""
    assert neuron.delta is not None
    definition = net.delta_definitions[neuron.delta]
    delta_value: Number | None = _number(sp.sympify(exact[neuron.delta])) if exact and neuron.delta in exact else None
    if delta_value is None and point is not None:
        delta_value = point.get(neuron.delta)
    return DeltaTerm(neuron, definition, delta_value, local)


def derive_all(net: Network, point: Mapping[sp.Symbol, float] | None = None) -> dict[str, Derivation]:
    """A derivation for every weight and bias (biases too when they are not trained)."""
    memo: dict[sp.Symbol, int] = {}
    exact = exact_point(net, point) if point is not None else None
    return {p.name: derive(net, p, point, memo=memo, exact=exact) for p in net.parameters}


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
