"""The symbolic network: nets, outs, δs and the loss as sympy expressions.

The network is built around layers. Each neuron has a ``net`` and an ``out``
symbol and a ``delta`` symbol (δ = ∂E/∂net); each definition is *local*: a net
is written in the previous layer's out symbols, an out in its own net, a δ in
the next layer's δ symbols (BP2 of Nielsen). Nothing is expanded, so building
and deriving cost time linear in the number of parameters; the fully expanded
closed form is produced on request by :mod:`derive.core.chain`, behind a size guard.

Nothing is made before it is asked for: a symbol is created the first time its
name is looked up, a definition the first time its symbol is, and a layer's
weight matrix is a view that makes the symbols of the entries read. A
784-256-256-10 network has 270,000 weights; one gradient touches a few hundred.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property, partial
from typing import overload

import sympy as sp

from ..errors import DeriveError, listing, shorten, suggest
from ..spec.naming import latex_name
from ..spec.reading import BiasKind, LayerSpec, Spec
from .layers import Conv, Dense, Kind, Recurrent, kind_of
from .rules import (
    SYMMETRIC_FROM,
    Activation,
    LayerMap,
    Loss,
    activation,
    differentiate,
    log_parts,
    loss,
    softmax_deltas,
)

LOSS_SYMBOL = sp.Symbol("E", real=True)


class SymbolKind(StrEnum):
    """What a named symbol stands for."""

    INPUT = "input"
    WEIGHT = "weight"
    BIAS = "bias"
    NET = "net"
    OUT = "out"
    TARGET = "target"
    DELTA = "delta"


@dataclass(frozen=True)
class Neuron:
    """One neuron: where it sits and its symbols."""

    layer: int  # index into Network.layers (0 is the input layer)
    index: int  # position in its layer, from 0
    label: str  # the spec's neuron name, or "l_j" for layers given by size
    out: sp.Symbol  # for an input neuron, the input symbol itself
    net: sp.Symbol | None = None
    delta: sp.Symbol | None = None
    target: sp.Symbol | None = None


@dataclass(frozen=True)
class SymbolInfo:
    """What a named symbol is: its kind and where it sits.

    For a weight, ``row``/``col`` index the layer's matrix; for a shared bias
    ``row`` is None.
    """

    name: str
    kind: SymbolKind
    layer: int
    row: int | None = None
    col: int | None = None


def _real(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


class WeightRow(Sequence[sp.Symbol]):
    """Row ``j`` of a layer's weight matrix; an entry's symbol is made when it is read."""

    def __init__(self, network: Network, names: tuple[str, ...]) -> None:
        self._network = network
        self._names = names

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, k: int) -> sp.Symbol: ...
    @overload
    def __getitem__(self, k: slice) -> tuple[sp.Symbol, ...]: ...
    def __getitem__(self, k: int | slice) -> sp.Symbol | tuple[sp.Symbol, ...]:
        if isinstance(k, slice):
            return tuple(self._network.symbols[n] for n in self._names[k])
        return self._network.symbols[self._names[k]]

    def __iter__(self) -> Iterator[sp.Symbol]:
        symbols = self._network.symbols
        return (symbols[n] for n in self._names)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


class WeightMatrix(Sequence[WeightRow]):
    """A layer's weight symbols, ``weights[j][k]`` from neuron k of the previous layer into neuron j."""

    def __init__(self, network: Network, names: tuple[tuple[str, ...], ...]) -> None:
        self._rows = tuple(WeightRow(network, row) for row in names)

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, j: int) -> WeightRow: ...
    @overload
    def __getitem__(self, j: slice) -> tuple[WeightRow, ...]: ...
    def __getitem__(self, j: int | slice) -> WeightRow | tuple[WeightRow, ...]:
        return self._rows[j]

    def column(self, k: int) -> tuple[sp.Symbol, ...]:
        """The weights leaving neuron k of the previous layer."""
        return tuple(row[k] for row in self._rows)


class Layer:
    """A layer of neurons; non-input layers carry weights, biases and a rule.

    Neurons, weights and biases are made on first use.
    """

    def __init__(self, network: Network, index: int, spec: LayerSpec, rule: Activation | LayerMap | None) -> None:
        self.network = network
        self.index = index
        self.spec = spec
        self.rule = rule

    def __repr__(self) -> str:
        return f"Layer({self.index}, {self.size} neurons, {self.spec.activation or 'input'})"

    @property
    def number(self) -> int:
        """Nielsen's layer number (the input layer is 1)."""
        return self.spec.number

    @property
    def size(self) -> int:
        return self.spec.size

    @property
    def is_output(self) -> bool:
        return self.index == len(self.network.spec.layers) - 1

    @property
    def kind(self) -> Kind:
        """How the layer's nets are made from the previous outs (the input layer has no kind)."""
        assert self.index > 0, "the input layer has no nets"
        return kind_of(self.spec)

    @cached_property
    def neurons(self) -> tuple[Neuron, ...]:
        symbols = self.network.symbols
        lspec = self.spec
        if self.index == 0:
            return tuple(Neuron(0, j, name, out=symbols[name]) for j, name in enumerate(lspec.names))
        targets = lspec.target_names if self.is_output else (None,) * self.size
        return tuple(
            Neuron(
                self.index,
                j,
                label,
                out=symbols[out],
                net=symbols[net],
                delta=symbols[_delta_name(lspec, label)],
                target=symbols[target] if target is not None else None,
            )
            for j, (label, net, out, target) in enumerate(zip(lspec.names, lspec.net_names, lspec.out_names, targets))
        )

    @cached_property
    def weights(self) -> WeightMatrix:
        return WeightMatrix(self.network, self.spec.weight_names)

    @cached_property
    def biases(self) -> tuple[sp.Symbol | None, ...]:
        bias = self.spec.bias
        symbols = self.network.symbols
        if bias.kind is BiasKind.SHARED:
            return (symbols[bias.names[0]],) * self.size
        if bias.kind is BiasKind.PER_NEURON:
            if len(bias.names) == self.size:
                return tuple(symbols[b] for b in bias.names)
            index = partial(self.kind.bias_index, self.spec)  # a conv's: one per channel
            return tuple(symbols[bias.names[index(j)]] for j in range(self.size))
        return (None,) * self.size

    @property
    def routes(self) -> Sequence[int]:
        """A max pool's winners: for each of its nets, the previous layer's out it passes on (the float pass's)."""
        return self.network.routes(self.index)

    @cached_property
    def nets(self) -> tuple[sp.Symbol, ...]:
        return tuple(n.net for n in self.neurons if n.net is not None)

    @cached_property
    def outs(self) -> tuple[sp.Symbol, ...]:
        return tuple(n.out for n in self.neurons)

    @cached_property
    def exposed(self) -> tuple[sp.Symbol, ...]:
        """The outs the next layer reads: an rnn's last states; every out otherwise."""
        if self.index > 0 and isinstance(self.kind, Recurrent):
            return tuple(self.outs[n] for n in self.kind.exposed(self.spec))
        return self.outs

    @cached_property
    def deltas(self) -> tuple[sp.Symbol, ...]:
        return tuple(n.delta for n in self.neurons if n.delta is not None)


def _delta_name(lspec: LayerSpec, label: str) -> str:
    """δ's name: cannot clash with a spec name, which is ASCII."""
    return f"δ{label}" if lspec.by_size else f"δ_{label}"


class _Index(Mapping[str, SymbolInfo]):
    """Every name of the network and what it is, in the order of the layers.

    The weights' names (most of a big network's) are indexed the first time a
    name is not among the others.
    """

    def __init__(self, spec: Spec) -> None:
        self._spec = spec
        where: dict[str, tuple[SymbolKind, int, int | None, int | None]] = {}
        for index, lspec in enumerate(spec.layers):
            if index == 0:
                where.update((name, (SymbolKind.INPUT, 0, j, None)) for j, name in enumerate(lspec.names))
                continue
            is_output = index == len(spec.layers) - 1
            for j, label in enumerate(lspec.names):
                where[lspec.net_names[j]] = (SymbolKind.NET, index, j, None)
                where[lspec.out_names[j]] = (SymbolKind.OUT, index, j, None)
                where[_delta_name(lspec, label)] = (SymbolKind.DELTA, index, j, None)
                if is_output:
                    where[lspec.target_names[j]] = (SymbolKind.TARGET, index, j, None)
            if lspec.bias.kind is BiasKind.SHARED:
                where[lspec.bias.names[0]] = (SymbolKind.BIAS, index, None, None)
            else:
                where.update((b, (SymbolKind.BIAS, index, j, None)) for j, b in enumerate(lspec.bias.names))
        self._where = where
        self._weights: dict[str, tuple[SymbolKind, int, int | None, int | None]] | None = None

    def _weight_index(self) -> dict[str, tuple[SymbolKind, int, int | None, int | None]]:
        if self._weights is None:
            weights: dict[str, tuple[SymbolKind, int, int | None, int | None]] = {}
            for index, lspec in enumerate(self._spec.layers[1:], start=1):
                for j, row in enumerate(lspec.weight_names):
                    weights.update((w, (SymbolKind.WEIGHT, index, j, k)) for k, w in enumerate(row))
            self._weights = weights
        return self._weights

    def _find(self, name: str) -> tuple[SymbolKind, int, int | None, int | None] | None:
        found = self._where.get(name)
        return found if found is not None else self._weight_index().get(name)

    def __getitem__(self, name: str) -> SymbolInfo:
        found = self._find(name)
        if found is None:
            raise KeyError(name)
        kind, layer, row, col = found
        return SymbolInfo(name, kind, layer, row, col)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __iter__(self) -> Iterator[str]:
        """Layer by layer: a layer's nets, outs, δs and targets, then its weights and biases."""
        by_layer: dict[int, list[str]] = {}
        for name, (_, layer, _, _) in self._where.items():
            by_layer.setdefault(layer, []).append(name)
        for index, lspec in enumerate(self._spec.layers):
            names = by_layer.get(index, [])
            biases = set(lspec.bias.names)
            yield from (n for n in names if n not in biases)
            for row in lspec.weight_names:
                yield from row
            yield from (n for n in names if n in biases)

    def __len__(self) -> int:
        return len(self._where) + sum(len(row) for lspec in self._spec.layers for row in lspec.weight_names)


class _Symbols(Mapping[str, sp.Symbol]):
    """name → its sympy symbol, made on first use."""

    def __init__(self, index: _Index) -> None:
        self._index = index
        self._made: dict[str, sp.Symbol] = {}

    def __getitem__(self, name: str) -> sp.Symbol:
        symbol = self._made.get(name)
        if symbol is None:
            if name not in self._index:
                raise KeyError(name)
            symbol = self._made[name] = _real(name)
        return symbol

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    @property
    def made(self) -> int:
        """How many symbols exist so far (a derivation of one weight makes a few hundred of 270,000)."""
        return len(self._made)

    def __len__(self) -> int:
        return len(self._index)


class _Latex(Mapping[sp.Symbol, str]):
    """symbol → its LaTeX spelling, decided on first use."""

    def __init__(self, network: Network) -> None:
        self._network = network
        # one sample of a batch has its own loss, E^[n]; the batch's is E
        of_batch = network.spec.of_batch
        self._spelled: dict[sp.Symbol, str] = {LOSS_SYMBOL: f"E^{{[{of_batch[0]}]}}" if of_batch else "E"}

    def __getitem__(self, symbol: sp.Symbol) -> str:
        spelled = self._spelled.get(symbol)
        if spelled is None:
            name = getattr(symbol, "name", None)
            if name is None or name not in self._network.info:
                raise KeyError(symbol)
            spelled = self._spelled[symbol] = self._network.latex_of(name)
        return spelled

    def __contains__(self, symbol: object) -> bool:
        return symbol == LOSS_SYMBOL or getattr(symbol, "name", None) in self._network.info

    def __iter__(self) -> Iterator[sp.Symbol]:
        yield LOSS_SYMBOL
        symbols = self._network.symbols
        yield from (symbols[name] for name in self._network.info)

    def __len__(self) -> int:
        return 1 + len(self._network.info)


class Definitions(Mapping[sp.Symbol, sp.Expr]):
    """symbol → its local definition, each made when it is first read; iterates in layer order."""

    def __init__(self, keys: Callable[[], Iterator[sp.Symbol]], define: Callable[[sp.Symbol], sp.Expr | None]) -> None:
        self._keys = keys
        self._define = define
        self._made: dict[sp.Symbol, sp.Expr] = {}

    def __getitem__(self, symbol: sp.Symbol) -> sp.Expr:
        definition = self._made.get(symbol)
        if definition is None:
            definition = self._define(symbol)
            if definition is None:
                raise KeyError(symbol)
            self._made[symbol] = definition
        return definition

    def __iter__(self) -> Iterator[sp.Symbol]:
        return self._keys()

    def __len__(self) -> int:
        return sum(1 for _ in self._keys())


class Network:
    """A spec turned into sympy symbols and local definitions, made on demand."""

    def __init__(self, spec: Spec, routes: Callable[[int], Sequence[int]] | None = None) -> None:
        """``routes(index)``: a max-pool layer's winners, one previous out per net, decided by the float pass."""
        self.spec = spec
        self._routes = routes
        self._routed: dict[int, tuple[int, ...]] = {}
        layers: list[Layer] = []
        for index, lspec in enumerate(spec.layers):
            rule = None if index == 0 else activation(lspec.activation, f"{spec.source}: layers[{index}].activation")
            layers.append(Layer(self, index, lspec, rule))
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.loss_rule: Loss = loss(spec.loss.kind, spec.loss.expr, f"{spec.source}: loss.expr")
        # a layer map's outs and Jacobian are made for the whole layer at once, by layer index
        self._layer_map_outs: dict[int, tuple[sp.Expr, ...]] = {}
        self._jacobians: dict[int, tuple[tuple[sp.Expr, ...], ...]] = {}

    @cached_property
    def has_max_pools(self) -> bool:
        """Whether a layer routes by numbers (a max pool): then each point has its own routes."""
        return any(layer.kind.startswith("maxpool") for layer in self.spec.layers)

    def routes(self, index: int) -> Sequence[int]:
        """The winners of max-pool layer ``index`` (see :class:`derive.core.layers.Pool`)."""
        if self._routes is None:
            raise DeriveError(
                "max pooling passes on the largest input of each window, which needs the inputs' numbers",
                where=self.spec.source,
                hint='give the input layer values (or values = "random")',
            )
        if index not in self._routed:
            self._routed[index] = tuple(self._routes(index))
        return self._routed[index]

    @cached_property
    def info(self) -> Mapping[str, SymbolInfo]:
        """What each name of the network is (inputs, weights, biases, nets, outs, targets, δs)."""
        return _Index(self.spec)

    @cached_property
    def symbols(self) -> _Symbols:
        """The symbol of each name, made on first use."""
        index = self.info
        assert isinstance(index, _Index)
        return _Symbols(index)

    @cached_property
    def latex(self) -> Mapping[sp.Symbol, str]:
        """The LaTeX spelling of E and of each symbol of the network."""
        return _Latex(self)

    def latex_of(self, name: str) -> str:
        """How a name of this network is written in LaTeX."""
        info = self.info[name]
        if info.kind is SymbolKind.DELTA:
            lspec = self.spec.layers[info.layer]
            assert info.row is not None
            return _delta_latex(self.latex_of(lspec.net_names[info.row]))
        if info.kind is SymbolKind.BIAS:
            number = self.spec.layers[info.layer].number
            # Nielsen's b^{l}, b^{l}_{j} only for the default names; a user's b1 in 000's notation is b_{1}
            nielsen = name == (f"b{number}" if info.row is None else f"b{number}_{info.row + 1}")
            return latex_name(name, nielsen)
        return latex_name(name, True)

    # -- structure -------------------------------------------------------------

    @property
    def input_layer(self) -> Layer:
        return self.layers[0]

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    @cached_property
    def parameters(self) -> tuple[sp.Symbol, ...]:
        """Every weight and bias, layer by layer; a shared bias once."""
        return tuple(self.symbols[name] for name in self.spec.parameter_names)

    def neuron_of(self, symbol: sp.Symbol) -> Neuron:
        """The neuron whose net, out or δ this symbol is."""
        info = self.info[symbol.name]
        assert info.row is not None
        return self.layers[info.layer].neurons[info.row]

    def lookup(self, name: str) -> sp.Symbol:
        """The symbol of a parameter or intermediate quantity, with a helpful error."""
        info = self.info.get(name)
        if info is None or info.kind in (SymbolKind.TARGET, SymbolKind.DELTA):
            valid = [n for n, i in self.info.items() if i.kind not in (SymbolKind.TARGET, SymbolKind.DELTA)]
            params = listing(self.spec.parameter_names)
            hint = suggest(name, valid)
            hint = (hint + "\n  " if hint else "") + "parameters: " + params
            hint += "\n  also any input, net or out: " + listing(
                [n for n, i in self.info.items() if i.kind in (SymbolKind.INPUT, SymbolKind.NET, SymbolKind.OUT)], 12
            )
            dense = [layer.spec.number for layer in self.layers[1:] if layer.spec.kind == "dense"]
            if dense:
                hint += (
                    f"\n  or a dense layer's whole matrix, as an exported module names it: W{dense[0]}, b{dense[0]}, …"
                )
            stem, at, _ = name.partition("@")
            if at and stem in self.info:
                hint = (
                    f"{stem}@N is {stem} after N updates: derive check takes it (derive check SPEC '{name}=…'),"
                    " derive train --steps N shows every parameter after N"
                )
            raise DeriveError(f"unknown parameter {shorten(name)}", where=self.spec.source, hint=hint)
        return self.symbols[name]

    def _kind(self, symbol: sp.Symbol, kind: SymbolKind) -> SymbolInfo | None:
        info = self.info.get(getattr(symbol, "name", ""))
        return info if info is not None and info.kind is kind else None

    # -- the graph -------------------------------------------------------------

    def edges_from(self, node: sp.Symbol) -> list[tuple[sp.Symbol, sp.Expr]]:
        """(head, ∂head/∂node) for each edge leaving node: weight → net → out(s) → next nets … → E.

        A target or δ has no edges (nothing is differentiated by them).
        """
        info = self.info.get(node.name)
        if info is None:
            raise DeriveError(f"cannot differentiate with respect to {node.name}")
        layers = self.layers
        if info.kind in (SymbolKind.OUT, SymbolKind.INPUT):
            if info.layer == len(layers) - 1:
                return [(LOSS_SYMBOL, self.dE_dout[node])]
            assert info.row is not None
            layer = layers[info.layer]
            edges: list[tuple[sp.Symbol, sp.Expr]] = []
            if info.layer > 0 and isinstance(layer.kind, Recurrent):  # a state feeds the next step's nets
                edges += [(layer.nets[u.row], u.factor) for u in layer.kind.self_uses(layer, info.row)]
            read = self.read_index(info.layer, info.row)
            if read is not None:
                nxt = layers[info.layer + 1]
                edges += [(nxt.nets[u.row], u.factor) for u in nxt.kind.out_uses(nxt, read)]
            return edges
        if info.kind is SymbolKind.NET:
            neuron = self.neuron_of(node)
            edges = [(m.out, self.dout_dnet(m.out, node)) for m in self.feeds(neuron)]
            return [(head, d) for head, d in edges if d != 0]
        layer = layers[info.layer]
        if info.kind is SymbolKind.WEIGHT:
            assert info.row is not None and info.col is not None
            uses = layer.kind.weight_uses(layer, layers[info.layer - 1].exposed, info.row, info.col)
            return [(layer.nets[u.row], u.factor) for u in uses]
        if info.kind is SymbolKind.BIAS:  # a shared bias: one use per neuron
            return [(layer.nets[u.row], u.factor) for u in layer.kind.bias_uses(layer, info.row)]
        return []

    def read_index(self, index: int, row: int) -> int | None:
        """Where out ``row`` of layer ``index`` sits among the outs the next layer reads (None: it reads it not)."""
        layer = self.layers[index]
        if index > 0 and isinstance(layer.kind, Recurrent):
            exposed = layer.kind.exposed(layer.spec)
            return row - exposed.start if row in exposed else None
        return row

    def heads_from(self, node: sp.Symbol) -> list[sp.Symbol]:
        """The heads of :meth:`edges_from` (for counting paths: an elementwise net's one edge needs no factor)."""
        info = self.info.get(node.name)
        if info is not None and info.kind is SymbolKind.NET:
            layer = self.layers[info.layer]
            if isinstance(layer.rule, Activation) and layer.rule.fprime != 0:
                assert info.row is not None
                return [layer.neurons[info.row].out]
        if info is not None and info.kind in (SymbolKind.OUT, SymbolKind.INPUT) and info.layer < len(self.layers) - 1:
            nxt = self.layers[info.layer + 1]
            assert info.row is not None
            if info.layer > 0 and isinstance(self.layers[info.layer].kind, Recurrent):
                return [head for head, _ in self.edges_from(node)]
            return [nxt.nets[j] for j in nxt.kind.out_heads(nxt, info.row)]
        return [head for head, _ in self.edges_from(node)]

    def count_paths(self, node: sp.Symbol, memo: dict[sp.Symbol, int] | None = None) -> int:
        """How many paths lead from ``node`` to E (counted, not listed; ``memo`` keeps the counts of nodes seen).

        Walked with a stack, not recursion: a network of hundreds of layers is deeper than Python's stack.
        """
        memo = {} if memo is None else memo
        stack = [node]
        while stack:
            top = stack[-1]
            if top == LOSS_SYMBOL or top in memo:
                stack.pop()
                continue
            heads = self.heads_from(top)
            waiting = [h for h in heads if h != LOSS_SYMBOL and h not in memo]
            if waiting:
                stack.extend(waiting)
                continue
            memo[top] = sum(1 if h == LOSS_SYMBOL else memo[h] for h in heads)
            stack.pop()
        return 1 if node == LOSS_SYMBOL else memo[node]

    def path_counts(self) -> dict[str, int]:
        """How many paths lead from each weight and bias to E, by name (counted per net, not listed)."""
        memo: dict[sp.Symbol, int] = {}

        count = partial(self.count_paths, memo=memo)

        counts: dict[str, int] = {}
        for layer in self.layers[1:]:
            per_net = [count(n.net) for n in layer.neurons if n.net is not None]
            bias = layer.spec.bias
            if layer.spec.geometry is not None or isinstance(layer.kind, Recurrent):  # the sum over its uses
                prev = self.layers[layer.index - 1].exposed
                for row, names in enumerate(layer.spec.weight_names):
                    for col, name in enumerate(names):
                        counts[name] = sum(per_net[u.row] for u in layer.kind.weight_uses(layer, prev, row, col))
                for row, name in enumerate(bias.names):
                    uses = layer.kind.bias_uses(layer, None if bias.kind is BiasKind.SHARED else row)
                    counts[name] = sum(per_net[u.row] for u in uses)
                continue
            for names, c in zip(layer.spec.weight_names, per_net):
                counts.update(dict.fromkeys(names, c))
            if bias.kind is BiasKind.SHARED:
                counts.setdefault(bias.names[0], sum(per_net))
            else:
                counts.update(zip(bias.names, per_net))
        return {name: counts[name] for name in self.spec.parameter_names}

    # -- local definitions ---------------------------------------------------------

    def _nets(self) -> Iterator[sp.Symbol]:
        for layer in self.layers[1:]:
            yield from layer.nets

    def _outs(self) -> Iterator[sp.Symbol]:
        for layer in self.layers[1:]:
            yield from layer.outs

    def _deltas(self) -> Iterator[sp.Symbol]:
        for layer in reversed(self.layers[1:]):
            yield from layer.deltas

    @cached_property
    def net_definitions(self) -> Mapping[sp.Symbol, sp.Expr]:
        """net_j = Σ_k w_jk · out_k (previous layer) + b_j."""
        return Definitions(self._nets, self._net_definition)

    def _net_definition(self, symbol: sp.Symbol) -> sp.Expr | None:
        info = self._kind(symbol, SymbolKind.NET)
        if info is None:
            return None
        assert info.row is not None
        layer = self.layers[info.layer]
        return layer.kind.net(layer, self.layers[info.layer - 1].exposed, info.row)

    def net_products(self, symbol: sp.Symbol) -> tuple[list[tuple[sp.Expr, sp.Expr]], sp.Symbol | None] | None:
        """A dense or conv net's (weight, out) products and its bias, without building the sum; None for other
        nets (a pool's, an rnn's): printed from these, a net of 150 products costs no sympy arithmetic."""
        info = self._kind(symbol, SymbolKind.NET)
        if info is None:
            return None
        assert info.row is not None
        layer = self.layers[info.layer]
        kind = layer.kind
        if not isinstance(kind, Dense | Conv):
            return None
        return kind.products(layer, self.layers[info.layer - 1].exposed, info.row), layer.biases[info.row]

    @cached_property
    def out_definitions(self) -> Mapping[sp.Symbol, sp.Expr]:
        """out_j = f(net_j), or out_j = softmax(nets)_j for a layer map."""
        return Definitions(self._outs, self._out_definition)

    def _out_definition(self, symbol: sp.Symbol) -> sp.Expr | None:
        info = self._kind(symbol, SymbolKind.OUT)
        if info is None or info.layer == 0:
            return None
        assert info.row is not None
        layer = self.layers[info.layer]
        rule = layer.rule
        if isinstance(rule, LayerMap):
            return self._layer_outs(info.layer)[info.row]
        assert isinstance(rule, Activation)
        net = layer.neurons[info.row].net
        assert net is not None
        return rule.apply(net)

    def _layer_outs(self, index: int) -> tuple[sp.Expr, ...]:
        if index not in self._layer_map_outs:
            layer = self.layers[index]
            assert isinstance(layer.rule, LayerMap)
            self._layer_map_outs[index] = layer.rule.apply_layer(layer.nets)
        return self._layer_map_outs[index]

    @cached_property
    def loss_expression(self) -> sp.Expr:
        """E in the output layer's out and target symbols."""
        out = self.output_layer
        targets = tuple(n.target for n in out.neurons if n.target is not None)
        return self.loss_rule.total(out.outs, targets)

    @cached_property
    def output_errors(self) -> dict[sp.Symbol, sp.Expr]:
        """E_k for each output's out symbol: its own term of the loss (Mazur's E_o1, E_o2)."""
        out = self.output_layer
        return {n.out: self.loss_rule.term(n.out, n.target, out.size) for n in out.neurons if n.target is not None}

    @cached_property
    def dE_dout(self) -> dict[sp.Symbol, sp.Expr]:
        """∂E/∂out_k for each output neuron, differentiated from the loss formula."""
        return {o: differentiate(self.loss_expression, o) for o in self.output_layer.outs}

    def _jacobian(self, index: int) -> tuple[tuple[sp.Expr, ...], ...]:
        if index not in self._jacobians:
            layer = self.layers[index]
            assert isinstance(layer.rule, LayerMap)
            self._jacobians[index] = tuple(tuple(r) for r in layer.rule.jacobian(layer.nets, layer.outs))
        return self._jacobians[index]

    def dout_dnet(self, out: sp.Symbol, net: sp.Symbol) -> sp.Expr:
        """∂out_j/∂net_i: the activation's derivative, or a softmax Jacobian entry."""
        j, i = self.neuron_of(out), self.neuron_of(net)
        if j.layer != i.layer:
            return sp.S.Zero
        layer = self.layers[j.layer]
        if isinstance(layer.rule, LayerMap):
            return self._jacobian(layer.index)[j.index][i.index]
        if j.index != i.index:
            return sp.S.Zero
        assert isinstance(layer.rule, Activation)
        return layer.rule.derivative(net, out)

    def feeds(self, neuron: Neuron) -> tuple[Neuron, ...]:
        """The neurons whose out depends on this neuron's net (itself, or its whole softmax layer)."""
        layer = self.layers[neuron.layer]
        if isinstance(layer.rule, LayerMap):
            return layer.neurons
        return (neuron,)

    @cached_property
    def delta_definitions(self) -> Mapping[sp.Symbol, sp.Expr]:
        """δ_j = ∂E/∂net_j in the next layer's δ symbols (BP1, BP2).

        Output layer: δ_i = Σ_j ∂E/∂out_j · ∂out_j/∂net_i (one term when the
        activation is elementwise). With softmax and cross-entropy the sum folds
        to out_i − target_i, using Σ target = 1 (checked when the spec is read);
        a δ that cancels to a shorter form is kept in that form (bce ∘ σ: o − t).
        Hidden layer: δ_h = (Σ_i δ_i w_ih) · ∂out_h/∂net_h.
        """
        return Definitions(self._deltas, self._delta_definition)

    @cached_property
    def stable_output_deltas(self) -> dict[sp.Symbol, sp.Expr] | None:
        """The output δs in a form for computing, when the chain-rule form overflows: else None.

        A softmax output under a loss with log(1 − o) (bce): the chain-rule δ holds
        (1 − t_k)/(1 − o_k), infinite when o_k rounds to 1 although δ is finite. The
        numbers (CLI, training, the closed-form module) use :func:`rules.softmax_deltas`
        instead; what derive shows stays the chain rule, with exact values.
        """
        return self.output_deltas_for_numbers()

    def output_deltas_for_numbers(self, rests: Sequence[sp.Expr] | None = None) -> dict[sp.Symbol, sp.Expr] | None:
        """:attr:`stable_output_deltas`, with ``rests`` standing for logsumexp_{j≠k} of the output nets if given."""
        out = self.output_layer
        parts = log_parts(self.loss_rule)
        targets = [n.target for n in out.neurons]
        if not isinstance(out.rule, LayerMap) or out.size < 2 or parts is None or parts.b == 0:
            return None
        if any(t is None for t in targets):
            return None  # pragma: no cover - an output layer always has target symbols
        scale = sp.Rational(1, out.size) if self.loss_rule.mean_over_outputs else sp.S.One
        deltas = softmax_deltas(parts, out.nets, out.outs, targets, rests)
        return {n.delta: scale * d for n, d in zip(out.neurons, deltas) if n.delta is not None}

    def _delta_definition(self, symbol: sp.Symbol) -> sp.Expr | None:
        info = self._kind(symbol, SymbolKind.DELTA)
        if info is None:
            return None
        assert info.row is not None
        layer = self.layers[info.layer]
        n = layer.neurons[info.row]
        assert n.net is not None
        if layer.is_output:
            return self._output_delta(n)
        back: list[sp.Expr] = []
        if isinstance(layer.kind, Recurrent):  # BPTT: from the next step's nets, Σ_j δ_{t+1},j u_jk
            back.append(layer.kind.self_back(layer, n.index))
        read = self.read_index(info.layer, n.index)
        if read is not None:
            nxt = self.layers[info.layer + 1]
            back.append(nxt.kind.back(nxt, read))
        return sp.Add(*back) * self.dout_dnet(n.out, n.net)

    def _output_delta(self, n: Neuron) -> sp.Expr:
        out_layer = self.output_layer
        if isinstance(out_layer.rule, LayerMap) and out_layer.size > SYMMETRIC_FROM and n.index > 0:
            # a layer map treats its neurons alike and the loss is a sum of alike terms: δ_j is δ_1 with j and 1 swapped
            first = out_layer.neurons[0]
            swap = {first.out: n.out, n.out: first.out, first.net: n.net, n.net: first.net}
            if first.target is not None and n.target is not None:
                swap.update({first.target: n.target, n.target: first.target})
            return self.delta_definitions[first.delta].xreplace(swap)
        return self._derived_output_delta(n)

    def _derived_output_delta(self, n: Neuron) -> sp.Expr:
        assert n.net is not None
        out_layer = self.output_layer
        terms = [self.dE_dout[m.out] * self.dout_dnet(m.out, n.net) for m in self.feeds(n)]
        delta = sp.Add(*terms)
        if len(terms) > 1 and self.loss_rule.name == "cross_entropy":
            targets = [m.target for m in out_layer.neurons if m.target is not None]
            # with two outputs the Jacobian is written in one of them: out_k = 1 − Σ others brings both back
            # (a wider layer's entries name only out_j and out_i, see rules._layer_jacobian: δ itself folds)
            forms = [delta]
            if out_layer.size <= SYMMETRIC_FROM:
                forms += [
                    delta.subs(m.out, 1 - sp.Add(*(o for o in out_layer.outs if o != m.out)))
                    for m in out_layer.neurons
                    if m is not n
                ]
            folded = min((sp.collect(sp.expand(f), n.out).subs(sp.Add(*targets), 1) for f in forms), key=sp.count_ops)
            delta = folded if sp.count_ops(folded) < sp.count_ops(delta) else delta
        # bce ∘ σ: ((1−t)/(1−o) − t/o) · o(1−o) cancels to o − t, which stays finite when o rounds to 1
        cancelled = sp.cancel(delta)
        return cancelled if sp.count_ops(cancelled) < sp.count_ops(delta) else delta

    # -- numbers -------------------------------------------------------------

    def missing_numbers(self) -> list[str]:
        """What the spec leaves symbolic: input values, targets."""
        missing = []
        if self.spec.layers[0].values is None:
            missing.append("layers[0].values (the inputs)")
        targets = {n.target for n in self.output_layer.neurons if n.target is not None}
        # a loss in the outputs alone (micrograd's E = o) needs no targets
        if self.spec.layers[-1].targets is None and targets & self.loss_expression.free_symbols:
            missing.append(f"layers[{len(self.layers) - 1}].targets")
        return missing

    def require_numbers(self, command: str, symbolic_alternative: str = "") -> None:
        """Raise unless the spec gives inputs and targets; the hint names a symbolic alternative when one exists."""
        missing = self.missing_numbers()
        if missing:
            hint = 'add them to the spec (values = [...], or "random" to draw them from [init] seed)'
            if symbolic_alternative:
                hint += f", or {symbolic_alternative}"
            raise DeriveError(
                f"{command} needs numbers the spec does not give: " + ", ".join(missing),
                where=self.spec.source,
                hint=hint,
            )

    def given_values(self) -> dict[sp.Symbol, float]:
        """The spec's numbers: inputs, weights, biases and targets that are given (every symbol: slow on big nets)."""
        values: dict[sp.Symbol, float] = {}
        first = self.spec.layers[0]
        if first.values is not None:
            values.update(zip(self.input_layer.outs, first.values))
        from .init import weights

        for layer in self.layers[1:]:
            lspec = layer.spec
            for row, vrow in zip(layer.weights, weights(self.spec, layer.index).tolist()):
                values.update(zip(row, vrow))
            values.update((self.symbols[b], v) for b, v in zip(lspec.bias.names, lspec.bias.values))
            if lspec.targets is not None:
                values.update((n.target, t) for n, t in zip(layer.neurons, lspec.targets) if n.target is not None)
        return values


def _delta_latex(net_latex: str) -> str:
    r"""δ spelled like the net it belongs to: net_{h1} → δ_{h1}, z^{2}_{1} → δ^{2}_{1}."""
    if net_latex.startswith(r"\mathrm{net}"):
        return r"\delta" + net_latex[len(r"\mathrm{net}") :]
    if net_latex[:1].isalpha() and (net_latex[1:2] in ("_", "^")):
        return r"\delta" + net_latex[1:]
    return rf"\delta_{{{net_latex}}}"
