"""The symbolic network: nets, outs, δs and the loss as sympy expressions.

The network is built around layers. Each neuron has a ``net`` and an ``out``
symbol and a ``delta`` symbol (δ = ∂E/∂net); each definition is *local*: a net
is written in the previous layer's out symbols, an out in its own net, a δ in
the next layer's δ symbols (BP2 of Nielsen). Nothing is expanded, so building
and deriving cost time linear in the number of parameters; the fully expanded
closed form is produced on request by :mod:`derive.chain`, behind a size guard.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .errors import DeriveError, listing, suggest
from .naming import latex_name
from .rules import Activation, LayerMap, Loss, activation, differentiate, loss
from .spec import LayerSpec, Spec

LOSS_SYMBOL = sp.Symbol("E", real=True)


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
class Layer:
    """A layer of neurons; non-input layers carry weights, biases and a rule."""

    index: int
    spec: LayerSpec
    neurons: tuple[Neuron, ...]
    rule: Activation | LayerMap | None = None
    weights: tuple[tuple[sp.Symbol, ...], ...] = ()
    biases: tuple[sp.Symbol | None, ...] = ()

    @property
    def number(self) -> int:
        """Nielsen's layer number (the input layer is 1)."""
        return self.spec.number

    @property
    def size(self) -> int:
        return len(self.neurons)

    @property
    def nets(self) -> tuple[sp.Symbol, ...]:
        return tuple(n.net for n in self.neurons if n.net is not None)

    @property
    def outs(self) -> tuple[sp.Symbol, ...]:
        return tuple(n.out for n in self.neurons)

    @property
    def deltas(self) -> tuple[sp.Symbol, ...]:
        return tuple(n.delta for n in self.neurons if n.delta is not None)


@dataclass(frozen=True)
class SymbolInfo:
    """What a named symbol is: its kind and where it sits.

    ``kind`` is one of input, weight, bias, net, out, target, delta.
    For a weight, ``row``/``col`` index the layer's matrix; for a shared bias
    ``row`` is None.
    """

    name: str
    kind: str
    layer: int
    row: int | None = None
    col: int | None = None


def _real(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


class Network:
    """A spec turned into sympy symbols and local definitions."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.latex: dict[sp.Symbol, str] = {LOSS_SYMBOL: "E"}
        self.info: dict[str, SymbolInfo] = {}
        self.symbols: dict[str, sp.Symbol] = {}
        layers: list[Layer] = []
        for index, lspec in enumerate(spec.layers):
            layers.append(self._layer(index, lspec))
        self.layers: tuple[Layer, ...] = tuple(layers)
        self.loss_rule: Loss = loss(spec.loss.kind, spec.loss.expr, f"{spec.source}: loss.expr")

    # -- construction ----------------------------------------------------------

    def _symbol(
        self, name: str, kind: str, layer: int, nielsen: bool = True, latex: str = "", **where: int | None
    ) -> sp.Symbol:
        symbol = _real(name)
        self.symbols[name] = symbol
        self.info[name] = SymbolInfo(name, kind, layer, where.get("row"), where.get("col"))
        self.latex[symbol] = latex or latex_name(name, nielsen)
        return symbol

    def _layer(self, index: int, lspec: LayerSpec) -> Layer:
        by_size = lspec.names[0][0].isdigit()  # neurons of a layer given by size are "l_j"
        if index == 0:
            inputs = tuple(
                Neuron(0, j, name, out=self._symbol(name, "input", 0, row=j)) for j, name in enumerate(lspec.names)
            )
            return Layer(index, lspec, inputs)
        where = f"{self.spec.source}: layers[{index}].activation"
        rule = activation(lspec.activation, where)
        is_output = index == len(self.spec.layers) - 1
        neurons: list[Neuron] = []
        for j, label in enumerate(lspec.names):
            net_name, out_name = lspec.net_names[j], lspec.out_names[j]
            net = self._symbol(net_name, "net", index, row=j)
            out = self._symbol(out_name, "out", index, row=j)
            delta_latex = _delta_latex(self.latex[net])
            delta_name = f"δ{label}" if by_size else f"δ_{label}"  # cannot clash with a spec name (ASCII)
            delta = self._symbol(delta_name, "delta", index, False, delta_latex, row=j)
            target = None
            if is_output:
                target = self._symbol(lspec.target_names[j], "target", index, row=j)
            neurons.append(Neuron(index, j, label, out=out, net=net, delta=delta, target=target))
        weights = tuple(
            tuple(self._symbol(w, "weight", index, row=j, col=k) for k, w in enumerate(row))
            for j, row in enumerate(lspec.weight_names)
        )
        bias = lspec.bias
        if bias.kind == "shared":
            # b{l} reads b^{l} only when it is Nielsen's default name for this layer
            shared = self._symbol(bias.names[0], "bias", index, bias.names[0] == f"b{lspec.number}")
            biases: tuple[sp.Symbol | None, ...] = (shared,) * len(neurons)
        elif bias.kind == "per_neuron":
            # Nielsen's b^{l}_{j} only for the default names; a user's b1 in 000's notation is b_{1}
            biases = tuple(
                self._symbol(b, "bias", index, b == f"b{lspec.number}_{j + 1}", row=j) for j, b in enumerate(bias.names)
            )
        else:
            biases = (None,) * len(neurons)
        return Layer(index, lspec, tuple(neurons), rule, weights, biases)

    # -- structure -------------------------------------------------------------

    @property
    def input_layer(self) -> Layer:
        return self.layers[0]

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    @property
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
        if info is None or info.kind in ("target", "delta"):
            valid = [n for n, i in self.info.items() if i.kind not in ("target", "delta")]
            params = listing(self.spec.parameter_names)
            hint = suggest(name, valid)
            hint = (hint + "\n  " if hint else "") + "parameters: " + params
            hint += "\n  also any input, net or out: " + listing(
                [n for n, i in self.info.items() if i.kind in ("input", "net", "out")], 12
            )
            hint += "\n  or a whole layer's matrix, as an exported module names it: W2, b2, …"
            raise DeriveError(f"unknown parameter {name!r}", where=self.spec.source, hint=hint)
        return self.symbols[name]

    # -- local definitions ---------------------------------------------------------

    @cached_property
    def net_definitions(self) -> dict[sp.Symbol, sp.Expr]:
        """net_j = Σ_k w_jk · out_k (previous layer) + b_j."""
        defs: dict[sp.Symbol, sp.Expr] = {}
        for layer in self.layers[1:]:
            prev = self.layers[layer.index - 1].outs
            for neuron, row, bias in zip(layer.neurons, layer.weights, layer.biases):
                assert neuron.net is not None
                total = sp.Add(*(w * o for w, o in zip(row, prev)))
                defs[neuron.net] = total + bias if bias is not None else total
        return defs

    @cached_property
    def out_definitions(self) -> dict[sp.Symbol, sp.Expr]:
        """out_j = f(net_j), or out_j = softmax(nets)_j for a layer map."""
        defs: dict[sp.Symbol, sp.Expr] = {}
        for layer in self.layers[1:]:
            rule = layer.rule
            if isinstance(rule, LayerMap):
                defs.update(zip(layer.outs, rule.apply_layer(layer.nets)))
            else:
                assert isinstance(rule, Activation)
                for n in layer.neurons:
                    assert n.net is not None
                    defs[n.out] = rule.apply(n.net)
        return defs

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

    @cached_property
    def _jacobians(self) -> dict[int, tuple[tuple[sp.Expr, ...], ...]]:
        result = {}
        for layer in self.layers[1:]:
            if isinstance(layer.rule, LayerMap):
                result[layer.index] = tuple(tuple(r) for r in layer.rule.jacobian(layer.nets, layer.outs))
        return result

    def dout_dnet(self, out: sp.Symbol, net: sp.Symbol) -> sp.Expr:
        """∂out_j/∂net_i: the activation's derivative, or a softmax Jacobian entry."""
        j, i = self.neuron_of(out), self.neuron_of(net)
        if j.layer != i.layer:
            return sp.S.Zero
        layer = self.layers[j.layer]
        if isinstance(layer.rule, LayerMap):
            return self._jacobians[layer.index][j.index][i.index]
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
    def delta_definitions(self) -> dict[sp.Symbol, sp.Expr]:
        """δ_j = ∂E/∂net_j in the next layer's δ symbols (BP1, BP2).

        Output layer: δ_i = Σ_j ∂E/∂out_j · ∂out_j/∂net_i (one term when the
        activation is elementwise). With softmax and cross-entropy the sum folds
        to out_i − target_i, using Σ target = 1 (checked when the spec is read);
        a δ that cancels to a shorter form is kept in that form (bce ∘ σ: o − t).
        Hidden layer: δ_h = (Σ_i δ_i w_ih) · ∂out_h/∂net_h.
        """
        defs: dict[sp.Symbol, sp.Expr] = {}
        out_layer = self.output_layer
        targets = [n.target for n in out_layer.neurons if n.target is not None]
        for n in out_layer.neurons:
            assert n.net is not None and n.delta is not None
            terms = [self.dE_dout[m.out] * self.dout_dnet(m.out, n.net) for m in self.feeds(n)]
            delta = sp.Add(*terms)
            if len(terms) > 1 and self.loss_rule.name == "cross_entropy":
                # with two outputs the Jacobian is written in one of them: out_k = 1 − Σ others brings both back
                forms = [delta] + [
                    delta.subs(m.out, 1 - sp.Add(*(o for o in out_layer.outs if o != m.out)))
                    for m in out_layer.neurons
                    if m is not n
                ]
                folded = min(
                    (sp.collect(sp.expand(f), n.out).subs(sp.Add(*targets), 1) for f in forms), key=sp.count_ops
                )
                delta = folded if sp.count_ops(folded) < sp.count_ops(delta) else delta
            # bce ∘ σ: ((1−t)/(1−o) − t/o) · o(1−o) cancels to o − t, which stays finite when o rounds to 1
            cancelled = sp.cancel(delta)
            defs[n.delta] = cancelled if sp.count_ops(cancelled) < sp.count_ops(delta) else delta
        for layer in reversed(self.layers[1:-1]):
            nxt = self.layers[layer.index + 1]
            for h in layer.neurons:
                assert h.net is not None and h.delta is not None
                back = sp.Add(*(m.delta * row[h.index] for m, row in zip(nxt.neurons, nxt.weights)))
                defs[h.delta] = back * self.dout_dnet(h.out, h.net)
        return defs

    # -- numbers -------------------------------------------------------------

    def missing_numbers(self) -> list[str]:
        """What the spec leaves symbolic: input values, targets."""
        missing = []
        if self.spec.layers[0].values is None:
            missing.append("layers[0].values (the inputs)")
        if self.spec.layers[-1].targets is None:
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
        """The spec's numbers: inputs, weights, biases and targets that are given."""
        values: dict[sp.Symbol, float] = {}
        first = self.spec.layers[0]
        if first.values is not None:
            values.update(zip(self.input_layer.outs, first.values))
        from .init import weights

        for layer in self.layers[1:]:
            lspec = layer.spec
            for row, vrow in zip(layer.weights, weights(self.spec, layer.index).tolist()):
                values.update(zip(row, vrow))
            if lspec.bias.kind == "shared":
                values[self.symbols[lspec.bias.names[0]]] = lspec.bias.values[0]
            elif lspec.bias.kind == "per_neuron":
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
