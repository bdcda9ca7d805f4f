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

import functools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import mpmath
import sympy as sp

from ..errors import TooLargeError
from .layers import Dense, Dyadic, Recurrent, dyadic, exact_sum
from .network import LOSS_SYMBOL, Layer, Network, Neuron, SymbolKind
from .point import LazyMapping, Point
from .policy import (
    POLICY,
    Number,
    decimal_constants,
    decimal_float,
    float_at,
    kept,
    reduce_exact,
    to_number,
    written_numbers,
)
from .policy import exact as exactly
from .rules import Activation, LayerMap, X, Y

MAX_PATHS = 16  # above this, show the δ form instead of listing paths
MAX_CLOSED_FORM_NODES = 60_000
MAX_CLOSED_FORM_LAYERS = 64  # closed forms of deeper networks are refused: their nesting outruns Python's stack
EXACT_DIGITS = POLICY.exact_digits
MAX_EXACT_DIGITS = POLICY.max_exact_digits


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
        return to_number(sp.sympify(product, strict=True), kept(*(f.value for f in self.factors)))


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
        product = sp.sympify(self.delta_value, strict=True) * self.local.value
        return to_number(product, kept(self.delta_value, self.local.value))


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

    def closed_form(
        self, limit: int = MAX_CLOSED_FORM_NODES, *, for_numbers: bool = False, keep: frozenset[sp.Symbol] = frozenset()
    ) -> sp.Expr:
        """∂E/∂quantity written out in inputs, weights, biases and targets only (and the symbols in ``keep``).

        ``for_numbers``: with the output δs in the form computed, not shown, where the two
        differ (bce ∘ softmax, see :attr:`Network.stable_output_deltas`).
        Raises :class:`TooLargeError` when the expression would have more than
        ``limit`` nodes (it grows like width**depth).
        """
        deltas = self.network.stable_output_deltas if for_numbers else None
        return expand_definitions(self.network, self.delta_expression, limit, self.quantity.name, deltas, keep)

    def __repr__(self) -> str:
        value = "?" if self.value is None else f"{float(self.value):.8g}"
        return f"<Derivation ∂E/∂{self.quantity.name} = {value}: {self.path_count} path(s), {self.form} form>"


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
    value = erfc_form(expr).xreplace({s: exactly(point[s]) for s in needed})
    keep = getattr(point, "keep", False)  # an exact point asked to keep every digit
    if not value.is_Number:
        value = value.evalf(point.digits if keep else EXACT_DIGITS)  # type: ignore[attr-defined]
    return to_number(value, keep)


@functools.lru_cache(maxsize=4096)  # a layer's neurons share their activation's formula
def _exact_constants(expr: sp.Expr) -> sp.Expr:
    return decimal_constants(expr)


def erfc_form(expr: sp.Expr) -> sp.Expr:
    """c + c·erf(u) written c·erfc(−u): gelu at a net of −300 is 1 + erf(−212) = e^−45000-ish.

    sympy's evalf finds such a cancellation by raising its precision, which at −300 takes minutes;
    erfc of a large argument is one asymptotic series. Identities only; for evaluating, never shown.
    """
    if not expr.has(sp.erf):
        return expr

    def fold(add: sp.Add) -> sp.Expr:
        terms = list(add.args)
        constant = sum((t for t in terms if t.is_Number), sp.S.Zero)
        for i, term in enumerate(terms):
            coeff, rest = term.as_coeff_Mul()
            if isinstance(rest, sp.erf) and constant != 0 and coeff == constant:
                others = [t for j, t in enumerate(terms) if j != i and not t.is_Number]
                return sp.Add(*others, coeff * sp.erfc(-rest.args[0]))
        return add

    return expr.replace(lambda e: isinstance(e, sp.Add), fold)


def factor_value(net: Network, expr: sp.Expr, exact: Mapping[sp.Symbol, Number] | None) -> Number | None:
    """A factor's value at an exact point; where that is 0 or no number, recomputed with outs written in nets.

    Beyond MAX_EXACT_DIGITS, 1 − σ(net) still rounds to 0 (net = 10⁶ needs 434,000 digits):
    written in the net, a·(1 − a) is e^−net/(1 + e^−net)², which a sympy Float holds.
    """
    value = evaluate(expr, exact)
    if exact is None:
        return value
    outs = {s: net.out_definitions[s] for s in expr.free_symbols if s in net.out_definitions}
    # at the digit cap a softmax's 1 − out may keep a digit or two (1 − e^−9206 carried to 4000 digits) and
    # still be a number: recompute those in the nets too (σ's a·(1 − a) rounds to exactly 0 and is caught below)
    capped = (
        isinstance(exact, ExactPoint)
        and exact.digits >= MAX_EXACT_DIGITS
        and any(isinstance(net.layers[net.info[s.name].layer].rule, LayerMap) for s in outs)
    )
    if (value is not None and value != 0 and not capped) or not outs:
        return value
    in_nets = evaluate(sp.together(expr.xreplace(outs)), exact)
    return in_nets if in_nets is not None else value


def exact_point(net: Network, point: Mapping[sp.Symbol, float]) -> Mapping[sp.Symbol, Number]:
    """The point's nets, outs, δs and E recomputed from its inputs, parameters and targets, for showing.

    In floats σ(40) is 1, so 1 − out is 0 and ∂E/∂out = (o − t)/(o(1 − o)) is 1/0. Here every
    number is a sympy Float with as many digits as the largest net asks for (1 − σ(net) needs
    about net/ln 10 of them) plus EXACT_DIGITS, and an exponent without limit (softmax outputs
    of e^−2000 are kept). A value that is still not a number is left out. Values are computed
    when first read, a layer at a time.
    """
    return ExactPoint(net, point)


class ExactPoint(LazyMapping, Mapping[sp.Symbol, Number]):
    """See :func:`exact_point`: inputs, parameters and targets as given, the rest recomputed on first read.

    ``digits`` asks for at least that many digits (``derive check`` judging a long claim); ``keep``: what is
    evaluated at this point keeps them, as sympy Floats (``derive grad --digits 50``). With either, a given
    float is the decimal written in the spec (:func:`~derive.core.policy.written`: 0.05 is 1/20, not the
    float nearest it); without, the float itself, exactly (the two differ by 1e-17 relative: beyond the
    digits shown, and reading 784·30 decimals costs 0.2 s).
    """

    def __init__(self, net: Network, point: Mapping[sp.Symbol, float], digits: int = 0, keep: bool = False) -> None:
        self.net = net
        self.point = point
        self.keep = keep  # values computed from it keep every digit (derive grad --digits 50)
        self.decimals = keep or digits > 0  # given floats read as the spec's decimals
        if isinstance(point, Point):
            largest = point.largest_net()
        else:
            nets = [float(point[s]) for s in net.net_definitions if s in point]
            largest = max((abs(v) for v in nets if math.isfinite(v)), default=0.0)
        self.digits = max(POLICY.digits_for(largest), digits)
        self._written = written_numbers(net.spec)  # numbers written with more digits than a float keeps
        self._forward: dict[int, tuple[list[Number | None], list[Number | None]]] = {}
        self._deltas: dict[int, list[Number | None]] = {}
        self._loss: list[Number | None] = []
        self._memo: dict[sp.Symbol, Number | None] = {}
        self._weight_rows: dict[int, list[list[Any]] | None] = {}
        self._dyadics: dict[int, list[list[Dyadic]] | None] = {}

    # -- given numbers -------------------------------------------------------

    def _given(self, symbol: sp.Symbol) -> sp.Float | None:
        value = self.point.get(symbol)
        if value is None:
            return None
        if not self.decimals:
            return sp.Float(value, self.digits) if isinstance(value, sp.Float) else float_at(value, self.digits)
        return decimal_float(self._as_written(symbol.name, value), self.digits)

    def _as_written(self, name: str, value: float | sp.Float) -> float | sp.Float:
        """The spec's number as written, where the point still holds it (not after training)."""
        given = self._written.get(name)
        return given if given is not None and isinstance(value, float) and value == given else value

    def _weights(self, index: int) -> list[list[Any]] | None:
        if index not in self._weight_rows:  # read by the forward pass and by the δs below
            self._weight_rows[index] = self._read_weights(index)
        return self._weight_rows[index]

    def _read_weights(self, index: int) -> list[list[Any]] | None:
        """The layer's weights: the floats (exact binary), or with ``decimals`` the spec's decimals."""
        symbols = self.net.layers[index].weights
        if isinstance(self.point, Point):
            given = self.point.arrays.weights[index].tolist()
        else:
            given = [[self.point.get(w) for w in row] for row in symbols]
            if any(v is None for row in given for v in row):
                return None
        if not self.decimals:
            return given
        if self._written:
            given = [[self._as_written(s.name, w) for s, w in zip(srow, row)] for srow, row in zip(symbols, given)]
        return [[decimal_float(w, self.digits) for w in row] for row in given]

    def _dyadic_weights(self, index: int) -> list[list[Dyadic]] | None:
        """Layer ``index``'s weights as (m, e) pairs, converted once for every net's exact sum."""
        if index not in self._dyadics:
            weights = self._weights(index)
            self._dyadics[index] = None if weights is None else [[dyadic(w) for w in row] for row in weights]
        return self._dyadics[index]

    def _biases(self, index: int) -> list[Number | None]:
        return [None if b is None else self._given(b) for b in self.net.layers[index].biases]

    # -- recomputed numbers ----------------------------------------------------

    def _rounded(self, value: sp.Expr) -> Number | None:
        if not value.is_Number:  # erf(0.4·√2): numbers that sympy leaves unevaluated
            value = value.evalf(self.digits)
        if value.is_Number and value not in (sp.nan, sp.zoo, sp.oo, -sp.oo):
            return sp.Float(value, self.digits)  # all its digits, not rounded to a float
        return None

    def _define(self, definition: sp.Expr, known: Mapping[sp.Symbol, Number | None]) -> Number | None:
        # before the numbers go in: erf of a Float evaluates at once; a constant is the decimal written
        definition = _exact_constants(erfc_form(definition))
        values = {}
        for s in definition.free_symbols:
            v = known.get(s)
            if v is None:
                return None
            values[s] = exactly(v)
        return self._rounded(definition.xreplace(values))

    def _elementwise(self, template: sp.Expr, var: sp.Symbol, value: Number | None) -> Number | None:
        """An activation's f or f' at one value: piecewise-linear rules (relu and kin) directly in mpmath, at
        the precision sympy's Floats would use; any other formula through sympy (:meth:`_define`)."""
        if value is None:
            return None
        fast = _piecewise_linear(template, var)
        if fast is None:
            return self._define(template, {var: value})
        exact = exactly(value)
        with mpmath.workdps(self.digits):
            given = mpmath.mpf(exact._mpf_) if isinstance(exact, sp.Float) else mpmath.mpf(exact)
            result = fast(given)
            if result is given:  # relu of a positive net, the identity: the value itself
                return value
            return sp.Float._new(result._mpf_, given.context.prec, zero=False)

    def _outs(self, index: int) -> list[Number | None]:
        if index == 0:
            return [self._given(s) for s in self.net.input_layer.outs]
        return self.forward(index)[1]

    def forward(self, index: int) -> tuple[list[Number | None], list[Number | None]]:
        """(nets, outs) of layer ``index``."""
        for lower in range(1, index):  # the layers below first, in order: no recursion through hundreds of layers
            if lower not in self._forward:
                self.forward(lower)
        if index not in self._forward:
            layer = self.net.layers[index]
            prev = self._read(index - 1)
            weights = self._dyadic_weights(index)
            biases = self._biases(index)
            nets: list[Number | None] = [None] * layer.size
            rule = layer.rule
            if isinstance(layer.kind, Recurrent) and isinstance(rule, Activation):
                outs: list[Number | None] = self._recurrent_forward(layer, prev, weights, biases, nets, rule)
            elif weights is not None and all(o is not None for o in prev):
                outs_dyadic = [dyadic(o) for o in prev if o is not None]
                for j in range(layer.size):
                    if layer.biases[j] is None or biases[j] is not None:
                        nets[j] = layer.kind.exact_net(layer, j, weights, outs_dyadic, biases[j], self.digits)
            if isinstance(layer.kind, Recurrent):
                pass  # the states are made step by step, above
            elif isinstance(rule, Activation):  # f of each net: the rule's formula, without making out_j = f(net_j)
                outs = [self._elementwise(rule.f, X, z) for z in nets]
            else:
                known: dict[sp.Symbol, Number | None] = dict(zip(layer.nets, nets))
                outs = [self._define(self.net.out_definitions[o], known) for o in layer.outs]
            self._forward[index] = (nets, outs)
        return self._forward[index]

    def _read(self, index: int) -> list[Number | None]:
        """The outs of layer ``index`` that the next layer reads (an rnn's last states)."""
        outs = self._outs(index)
        layer = self.net.layers[index]
        if index > 0 and isinstance(layer.kind, Recurrent):
            return [outs[n] for n in layer.kind.exposed(layer.spec)]
        return outs

    def _recurrent_forward(
        self,
        layer: Layer,
        prev: list[Number | None],
        weights: list[list[Dyadic]] | None,
        biases: list[Number | None],
        nets: list[Number | None],
        rule: Activation,
    ) -> list[Number | None]:
        """An rnn's states step by step: z_t from the inputs and h_{t−1}, then h_t = f(z_t); ``nets`` filled in."""
        outs: list[Number | None] = [None] * layer.size
        if weights is None or any(o is None for o in prev) or any(b is None for b in biases if b is not None):
            return outs
        known = [dyadic(o) for o in prev if o is not None]
        for n in range(layer.size):
            nets[n] = layer.kind.exact_net(layer, n, weights, known, biases[n], self.digits)
            outs[n] = self._elementwise(rule.f, X, nets[n])
            if outs[n] is None:
                return outs
            known.append(dyadic(outs[n]))
        return outs

    def deltas(self, index: int) -> list[Number | None]:
        """The δs of layer ``index``."""
        for higher in range(len(self.net.layers) - 1, index, -1):  # the layers above first: no deep recursion
            if higher not in self._deltas:
                self.deltas(higher)
        if index not in self._deltas:
            layer = self.net.layers[index]
            nets, outs = self.forward(index)
            rule = layer.rule
            # the symbols of every neuron, only where a formula in them is evaluated (a LeNet's first conv has
            # 3,456 neurons, and an elementwise f' needs only its own number)
            known: dict[sp.Symbol, Number | None] = (
                {**dict(zip(layer.nets, nets)), **dict(zip(layer.outs, outs))}
                if layer.is_output or not isinstance(rule, Activation)
                else {}
            )
            result: list[Number | None] = []
            if layer.is_output:
                known.update((n.target, self._given(n.target)) for n in layer.neurons if n.target is not None)
                # bce ∘ softmax: the chain-rule δ is 0/0 where an output is 1 to more digits than we carry
                definitions = self.net.stable_output_deltas or self.net.delta_definitions
                result = [self._define(definitions[d], known) for d in layer.deltas]
            elif isinstance(layer.kind, Recurrent):
                result = self._recurrent_deltas(index, nets, outs)
            else:
                # δ_h = (Σ_i δ_i w_ih) · ∂out_h/∂net_h (the hidden δ definition, BP2), the sum exactly
                above = self.deltas(index + 1)
                weights = self._dyadic_weights(index + 1)
                nxt = self.net.layers[index + 1]
                above_dyadic = None if any(d is None for d in above) else [dyadic(d) for d in above if d is not None]
                zero = sp.Float(0, self.digits)
                for h in range(layer.size):
                    if isinstance(rule, Activation):  # f' of the net, or of the out (rules.Activation.derivative)
                        if rule.fprime_in_out is not None:
                            local = self._elementwise(rule.fprime_in_out, Y, outs[h])
                        else:
                            local = self._elementwise(rule.fprime, X, nets[h])
                    else:
                        n = layer.neurons[h]
                        assert n.net is not None
                        local = self._define(self.net.dout_dnet(n.out, n.net), known)
                    if weights is None or local is None or above_dyadic is None:
                        result.append(None)
                        continue
                    if _is_integer(local, 0):  # a relu at rest, a pool entry that did not win: nothing flows back
                        result.append(zero)
                        continue
                    if _is_integer(local, 1):  # a relu at work, a pool's f' = 1: the sum itself
                        result.append(nxt.kind.exact_back(nxt, h, weights, above_dyadic, self.digits))
                        continue
                    back = nxt.kind.exact_back(nxt, h, weights, above_dyadic, self.digits)
                    result.append(self._rounded(sp.Float(back, self.digits) * exactly(local)))
            self._deltas[index] = result
        return self._deltas[index]

    def _recurrent_deltas(
        self, index: int, nets: list[Number | None], outs: list[Number | None]
    ) -> list[Number | None]:
        """BPTT exactly, last step first: δ_t = f′(z_t) · (Σ_j δ_{t+1},j u_jk + [t = T] Σ_i δ_i w_ik of the next layer)."""
        layer = self.net.layers[index]
        kind = layer.kind
        rule = layer.rule
        assert isinstance(kind, Recurrent) and isinstance(rule, Activation)
        result: list[Number | None] = [None] * layer.size
        own_weights = self._dyadic_weights(index)
        above = self.deltas(index + 1)
        nxt = self.net.layers[index + 1]
        next_weights = self._dyadic_weights(index + 1)
        if own_weights is None or next_weights is None or any(d is None for d in above):
            return result
        above_dyadic = [dyadic(d) for d in above if d is not None]
        later: dict[int, Dyadic] = {}
        for n in reversed(range(layer.size)):
            if rule.fprime_in_out is not None:
                local = self._elementwise(rule.fprime_in_out, Y, outs[n])
            else:
                local = self._elementwise(rule.fprime, X, nets[n])
            coefficients, values = kind.self_back_terms(layer, n, own_weights, later)
            read = self.net.read_index(index, n)
            if read is not None:
                assert isinstance(nxt.kind, Dense), "a dense layer reads an rnn's last state"
                more = nxt.kind.back_terms(nxt, read, next_weights, above_dyadic)
                coefficients, values = coefficients + more[0], values + more[1]
            if local is None:
                return result
            back = exact_sum(coefficients, values, None, self.digits)
            result[n] = back if local == 1 else self._rounded(back * exactly(local))
            later[n] = dyadic(result[n])
        return result

    def loss(self) -> Number | None:
        if not self._loss:
            out = self.net.output_layer
            _, outs = self.forward(out.index)
            known: dict[sp.Symbol, Number | None] = dict(zip(out.outs, outs))
            known.update((n.target, self._given(n.target)) for n in out.neurons if n.target is not None)
            self._loss.append(self._define(self.net.loss_expression, known))
        return self._loss[0]

    # -- the mapping -------------------------------------------------------------

    def _value(self, symbol: sp.Symbol) -> Number | None:
        if symbol not in self._memo:
            self._memo[symbol] = self._compute(symbol)
        return self._memo[symbol]

    def _compute(self, symbol: sp.Symbol) -> Number | None:
        if symbol == LOSS_SYMBOL:
            return self.loss()
        info = self.net.info.get(getattr(symbol, "name", ""))
        if info is None:
            return None
        kind = info.kind
        if kind in (SymbolKind.INPUT, SymbolKind.WEIGHT, SymbolKind.BIAS, SymbolKind.TARGET):
            return self._given(symbol)
        assert info.row is not None
        if kind is SymbolKind.DELTA:
            return self.deltas(info.layer)[info.row]
        nets, outs = self.forward(info.layer)
        return (nets if kind is SymbolKind.NET else outs)[info.row]

    def __getitem__(self, symbol: sp.Symbol) -> Number:
        value = self._value(symbol)
        if value is None:
            raise KeyError(symbol)
        return value

    def __contains__(self, symbol: object) -> bool:
        return self._value(symbol) is not None

    def __iter__(self) -> Iterator[sp.Symbol]:
        for symbol in (*(self.net.symbols[n] for n in self.net.info), LOSS_SYMBOL):
            if self._value(symbol) is not None:
                yield symbol

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _is_integer(value: Number, n: int) -> bool:
    """Whether a number is exactly the integer n (since sympy 1.13, Float(1.0) == 1 is False)."""
    if isinstance(value, sp.Float):
        return value._mpf_ == mpmath.libmp.from_int(n)
    return bool(value == n)


# --------------------------------------------------------------------------
# the graph


@cache
def _piecewise_linear(template: sp.Expr, var: sp.Symbol) -> Callable[[mpmath.mpf], mpmath.mpf] | None:
    """A function for an expression of ``var`` built only from sums, products, max, min, Heaviside and
    numbers (relu, leaky relu, the identity, and their derivatives), else None."""

    def build(e: sp.Expr) -> Callable[[mpmath.mpf], mpmath.mpf] | None:
        if e == var:
            return lambda v: v
        if e.is_Number:
            constant = mpmath.mpf(e.p) / e.q if e.is_Rational else mpmath.mpf(str(e))
            return lambda v: constant
        parts = [build(a) for a in e.args]
        if any(p is None for p in parts):
            return None
        fs = [p for p in parts if p is not None]
        if isinstance(e, sp.Add):
            return lambda v: mpmath.fsum(f(v) for f in fs)
        if isinstance(e, sp.Mul):
            return lambda v: mpmath.fprod(f(v) for f in fs)
        if isinstance(e, sp.Max):
            return lambda v: max(f(v) for f in fs)
        if isinstance(e, sp.Min):
            return lambda v: min(f(v) for f in fs)
        if isinstance(e, sp.Heaviside) and len(fs) == 2:
            arg, at_zero = fs
            return lambda v: mpmath.mpf(1) if arg(v) > 0 else (mpmath.mpf(0) if arg(v) < 0 else at_zero(v))
        return None

    return build(template) if template.free_symbols <= {var} else None


def local_factor(net: Network, head: sp.Symbol, tail: sp.Symbol) -> sp.Expr | None:
    """∂head/∂tail along one edge of the graph (a single chain-rule factor), or None without that edge."""
    if tail.name not in net.info:
        return None
    return next((factor for h, factor in net.edges_from(tail) if h == head), None)


def count_paths(net: Network, node: sp.Symbol, memo: dict[sp.Symbol, int] | None = None) -> int:
    """How many paths lead from node to E (counted, not listed)."""
    return net.count_paths(node, memo)


def _walk(net: Network, node: sp.Symbol) -> Iterator[list[tuple[sp.Symbol, sp.Symbol, sp.Expr]]]:
    """Every path from node to E as edges (tail, head, factor), tail first (a stack, not recursion: deep nets)."""
    stack: list[tuple[sp.Symbol, list[tuple[sp.Symbol, sp.Symbol, sp.Expr]]]] = [(node, [])]
    while stack:
        tail, path = stack.pop()
        if tail == LOSS_SYMBOL:
            yield path
            continue
        for head, factor in reversed(net.edges_from(tail)):  # reversed: popped in the edges' order
            stack.append((head, [*path, (tail, head, factor)]))


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
        value = to_number(sp.Add(*(exactly(v) for v in parts)), kept(*parts))
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
    if net.info[quantity.name].kind is SymbolKind.NET:
        neuron = net.neuron_of(quantity)
        one = Factor(of=quantity, wrt=quantity, expr=sp.S.One, value=1.0)
        return (_term(net, neuron, one, point, exact),)
    terms = []  # stays empty for an output's out: ∂E/∂out_o is one factor, no δ in it
    for head, factor in net.edges_from(quantity):
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
    delta_value: Number | None = (
        to_number(sp.sympify(exact[neuron.delta], strict=True), getattr(exact, "keep", False))
        if exact and neuron.delta in exact
        else None
    )
    if delta_value is None and point is not None:
        delta_value = point.get(neuron.delta)
    return DeltaTerm(neuron, definition, delta_value, local)


def gradient_at(net: Network, quantity: sp.Symbol, point: Mapping[sp.Symbol, float]) -> float:
    """∂E/∂quantity as Σ_j δ_j · ∂net_j/∂quantity with the point's own δs (the compiled passes'), for a
    weight or bias: no path is walked, so a max pool's winners are the point's, whatever the network's."""
    total = 0.0
    for head, factor in net.edges_from(quantity):
        delta = net.neuron_of(head).delta
        assert delta is not None
        value = evaluate(factor, point)
        total += float(point[delta]) * (float(value) if value is not None else math.nan)
    return total


def derive_all(net: Network, point: Mapping[sp.Symbol, float] | None = None) -> dict[str, Derivation]:
    """A derivation for every weight and bias (biases too when they are not trained)."""
    memo: dict[sp.Symbol, int] = {}
    exact = exact_point(net, point) if point is not None else None
    return {p.name: derive(net, p, point, memo=memo, exact=exact) for p in net.parameters}


@dataclass(frozen=True)
class BatchDerivation:
    """∂E/∂quantity over a batch: each sample's own derivation of ∂E[n]/∂quantity, and how they combine.

    E is the mean (or the sum) of the samples' losses E[n], so ∂E/∂q is the mean (or the sum) of the
    ∂E[n]/∂q: the chain rule runs once per sample, with that sample's nets, outs and δs.
    """

    quantity: sp.Symbol
    reduction: str  # "mean" or "sum"
    samples: tuple[Derivation, ...]
    value: Number | None
    worked: int = 1  # the sample a text works in full, from 1 (Spec.worked)

    @property
    def network(self) -> Network:
        return self.samples[0].network

    @property
    def path_count(self) -> int:
        return self.samples[0].path_count

    @property
    def form(self) -> str:
        return self.samples[0].form

    @property
    def expression(self) -> sp.Expr:
        """One sample's ∂E[n]/∂quantity in local symbols (every sample's has the same form)."""
        return self.samples[0].expression

    @property
    def scale(self) -> sp.Expr:
        """The factor before the sum over samples: 1/N for a mean, 1 for a sum."""
        return sp.Rational(1, len(self.samples)) if self.reduction == "mean" else sp.S.One

    def __repr__(self) -> str:
        value = "?" if self.value is None else f"{float(self.value):.8g}"
        return (
            f"<BatchDerivation ∂E/∂{self.quantity.name} = {value}: the {self.reduction} over "
            f"{len(self.samples)} samples, {self.path_count} path(s) each>"
        )


def derive_batch(
    net: Network,
    quantity: sp.Symbol,
    points: Sequence[Mapping[sp.Symbol, float]],
    reduction: str,
    memo: dict[sp.Symbol, int] | None = None,
    worked: int = 1,
    networks: Sequence[Network] | None = None,
) -> BatchDerivation:
    """∂E/∂quantity for a batch: :func:`derive` at each sample's point, then the mean or sum of the values.

    ``networks``: each sample's own (a max pool routes each sample by its numbers); else ``net`` for all.
    """
    if networks is not None:
        samples = tuple(derive(n, quantity, p) for n, p in zip(networks, points))
        return BatchDerivation(
            quantity, reduction, samples, reduce_exact([d.value for d in samples], reduction), worked
        )
    memo = {} if memo is None else memo
    samples = tuple(derive(net, quantity, p, memo=memo) for p in points)
    value = reduce_exact([d.value for d in samples], reduction)
    return BatchDerivation(quantity, reduction, samples, value, worked)


# --------------------------------------------------------------------------
# closed forms


class _Expander:
    """Substitutes definitions (net, out, δ) until only spec symbols remain."""

    def __init__(
        self,
        net: Network,
        deltas: Mapping[sp.Symbol, sp.Expr] | None = None,
        keep: frozenset[sp.Symbol] = frozenset(),
        cap: int | None = None,
    ) -> None:
        """``cap``: stop counting a sum's nodes once past it (``capped`` says so): sizing a map layer's δs one
        row at a time builds each row's definition, 2.4 s of `derive grad lenet` to count 2·10¹² nodes."""
        self.net = net
        self.deltas = deltas or {}
        self.keep = keep
        self.cap = cap
        self.capped = False
        self.memo: dict[sp.Symbol, sp.Expr] = {}
        self._sizes: dict[tuple[SymbolKind, int, int], int] = {}

    def definition(self, symbol: sp.Symbol) -> sp.Expr | None:
        if symbol in self.keep:
            return None
        if symbol in self.deltas:
            return self.deltas[symbol]
        info = self.net.info.get(symbol.name)
        if info is None:
            return None
        defs = {
            SymbolKind.NET: self.net.net_definitions,
            SymbolKind.OUT: self.net.out_definitions,
            SymbolKind.DELTA: self.net.delta_definitions,
        }.get(info.kind)
        if defs is None:
            return None
        try:
            return defs[symbol]
        except KeyError:  # an input's out has no definition
            return None

    def size(self, symbol: sp.Symbol) -> int:
        """Nodes of the symbol's closed form; a hidden layer's neurons are alike, so one of them stands for all."""
        info = self.net.info.get(symbol.name)
        if info is None or info.kind not in (SymbolKind.NET, SymbolKind.OUT, SymbolKind.DELTA) or info.layer == 0:
            return 1
        layer = self.net.layers[info.layer]
        assert info.row is not None
        row = info.row if layer.is_output or not isinstance(layer.kind, Dense) else 0  # dense neurons are alike
        key = (info.kind, info.layer, row)
        if key not in self._sizes and info.kind is SymbolKind.NET and not isinstance(layer.kind, Recurrent):
            # counted from the layer kind's rule without making the sum
            prev = self.net.layers[info.layer - 1]
            out_size = 1 if prev.index == 0 else self.size(prev.outs[0])  # an input is a symbol of size 1
            self._sizes[key] = layer.kind.net_size(layer, row, prev.size, out_size)
        if key not in self._sizes:
            neuron = layer.neurons[row]
            representative = {SymbolKind.NET: neuron.net, SymbolKind.OUT: neuron.out, SymbolKind.DELTA: neuron.delta}
            stand_in = representative[info.kind]
            assert stand_in is not None
            definition = self.definition(stand_in)
            self._sizes[key] = 1 if definition is None else self.tree_size(definition)
        return self._sizes[key]

    def tree_size(self, expr: sp.Basic) -> int:
        if isinstance(expr, sp.Symbol):
            return self.size(expr)
        total = 1
        for arg in expr.args:
            total += self.tree_size(arg)
            if self.cap is not None and total > self.cap:
                self.capped = True
                break
        return total

    def full(self, symbol: sp.Symbol) -> sp.Expr:
        if symbol not in self.memo:
            definition = self.definition(symbol)
            if definition is None:
                return symbol
            self.memo[symbol] = definition.xreplace({s: self.full(s) for s in definition.free_symbols})
        return self.memo[symbol]


def expand_definitions(
    net: Network,
    expr: sp.Expr,
    limit: int,
    label: str = "the expression",
    deltas: Mapping[sp.Symbol, sp.Expr] | None = None,
    keep: frozenset[sp.Symbol] = frozenset(),
) -> sp.Expr:
    """``expr`` with every net, out and δ but those in ``keep`` replaced by its definition (``deltas`` first)."""
    if any(isinstance(layer.kind, Recurrent) for layer in net.layers[1:]):
        raise TooLargeError(
            f"the closed form of {label} nests every time step inside the next (a recurrent layer): "
            "derive shows the sum over steps and the δs instead",
            limit=limit,
        )
    if len(net.layers) > MAX_CLOSED_FORM_LAYERS:  # nested this deep, sympy's own recursion would fail first
        raise TooLargeError(
            f"the closed form of ∂E/∂{label} would be nested {len(net.layers)} layers deep "
            f"(limit {MAX_CLOSED_FORM_LAYERS} layers)",
            hint="the δ form (the default output) has no such limit",
            size=len(net.layers),
            limit=MAX_CLOSED_FORM_LAYERS,
        )
    # map layers are sized row by row (their neurons differ: pools route, borders pad): counted up to the limit
    maps = any(not isinstance(layer.kind, Dense) for layer in net.layers[1:])
    expander = _Expander(net, deltas, keep, cap=limit if maps else None)
    size = expander.tree_size(expr)
    if size > limit:
        about = (
            f"more than {limit:,} nodes (the limit)" if expander.capped else f"about {size:,} nodes (limit {limit:,})"
        )
        raise TooLargeError(
            f"the closed form of ∂E/∂{label} would have {about}",
            hint="it grows like width**depth; the δ form (the default output) stays small",
            size=size,
            limit=limit,
        )
    return expr.xreplace({s: expander.full(s) for s in expr.free_symbols})
