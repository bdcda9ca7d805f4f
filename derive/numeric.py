"""Numbers from the derivation: compiled forward/backward passes and training.

Every elementwise function here is compiled from an expression the derivation
holds: the activation formula, its derivative, the loss formula (folded into
the output activation where that removes a log of the output, see
:func:`derive.rules.folded_loss`), the output layer's δ definitions. They are
printed by the exported module's NumPy printer, so the CLI's numbers come from
the same stable forms as the export (σ without underflow to 0, log(1 + eᵘ) as
logaddexp, log-softmax). The matrix structure (net = W·out + b, δ_h = (Wᵀδ) ⊙
f') is BP1–BP4. Nothing is substituted into sympy at each training step, so
``derive train mazur --steps 10000`` takes well under a second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np
import sympy as sp

from .chain import Number, exact_point, reduce_exact
from .codegen import VectorModule, compile_module
from .init import weights as init_weights
from .network import LOSS_SYMBOL, Layer, Network
from .point import Arrays, Point
from .printing import cse_lines, stabilize
from .rules import (
    LOG_1MO,
    LOG_O,
    Activation,
    LayerMap,
    O,
    T,
    X,
    Y,
    folded_loss,
    log_one_minus_softmax,
    logsumexp_of_others,
)
from .spec import BiasKind, LayerSpec

Array = np.ndarray
_Fn = Callable[..., Any]


def _compile(args: Sequence[sp.Symbol], exprs: sp.Expr | Sequence[sp.Expr]) -> _Fn:
    """A NumPy function of ``args`` returning ``exprs`` (a list when given a list).

    Printed by the exported module's printer after the same stabilizing
    rewrites, with shared subexpressions computed once.
    """
    many = isinstance(exprs, (list, tuple))
    items = [stabilize(sp.sympify(e, strict=True)) for e in (exprs if many else [exprs])]
    names: dict[sp.Symbol, str] = {s: f"_a{i}" for i, s in enumerate(args)}
    shared, codes = cse_lines(items, names, "_c")
    lines = [f"def _f({', '.join(names.values())}):", *(f"    {line}" for line in shared)]
    body = ", ".join(codes)
    lines.append(f"    return [{body}]" if many else f"    return {body}")
    namespace: dict[str, Any] = {"np": np, "math": math}
    # the source is printed from sympy trees by our printer, with argument names of our own: no spec text
    exec(compile("\n".join(lines), "<derive.numeric>", "exec"), namespace)
    fn: _Fn = namespace["_f"]
    return fn


def _as_array(value: object, like: Array) -> Array:
    """lambdify returns a plain number for a constant expression: broadcast it."""
    if isinstance(value, np.ndarray) and value.shape == like.shape and value.dtype == like.dtype:
        return value  # the usual case; broadcast_to costs ~3 µs a call, a quarter of a lecture's 10,000 steps
    return np.broadcast_to(np.asarray(value, dtype=like.dtype), like.shape)


@dataclass
class _Compiled:
    forward: _Fn  # net array → out array
    derivative: _Fn | None  # (net, out) arrays → ∂out/∂net; None for a layer map (its δ comes from the output δ)


class Compiled:
    """The network's numbers: parameters as arrays, and passes compiled from the derivation."""

    def __init__(self, network: Network) -> None:
        self.network = network
        spec = network.spec
        # (step, loss, (weights, biases)) at the first loss of a training run that is not a float
        self._breakdown: tuple[int, float, tuple[list[Array], list[Array | None]]] | None = None
        self.weights: list[Array] = [np.zeros((0, 0))]
        self.biases: list[Array | None] = [None]
        self.layers: list[_Compiled | None] = [None]
        for layer in network.layers[1:]:
            self.weights.append(init_weights(spec, layer.index))
            self.biases.append(_bias_array(layer.spec))
            self.layers.append(self._compile_layer(layer))
        out = network.output_layer
        inputs, targets_given = spec.layers[0].batch, spec.layers[-1].batch
        self._given = (inputs is not None, targets_given is not None)
        samples = spec.samples
        # one row a sample (the batch of the spec); nan where the spec leaves the numbers out
        self.x = np.array(inputs if inputs is not None else [[np.nan] * spec.layers[0].size] * samples, dtype=float)
        self.t = np.array(targets_given if targets_given is not None else [[np.nan] * out.size] * samples, dtype=float)
        rule = network.loss_rule
        self._loss_scale = 1.0 / out.size if rule.mean_over_outputs else 1.0
        self.reduction = spec.loss.reduction
        self._loss = self._compile_loss(out)
        targets = tuple(n.target for n in out.neurons if n.target is not None)
        # bce ∘ softmax: δ without 1/(1 − o), from logsumexp_{j≠k} of the nets, computed once for every δ
        rests = tuple(sp.Symbol(f"rest{k}", real=True) for k in range(out.size))
        stable = network.output_deltas_for_numbers(rests)
        self._rests = _compile(out.nets, logsumexp_of_others(out.nets)) if stable is not None else None
        definitions = stable or network.delta_definitions
        delta_defs = [definitions[n.delta] for n in out.neurons if n.delta is not None]
        args = (*out.nets, *out.outs, *targets, *(rests if stable is not None else ()))
        self._output_delta = _compile(args, delta_defs)

    def _compile_loss(self, out: Layer) -> _Fn:
        """(net, out, t) arrays → the per-output loss, in the most stable form the pair allows.

        An elementwise output whose loss folds into the activation is computed from the
        net (bce ∘ σ: log(1 + eᶻ) − t·z); a log of a softmax output is z − logsumexp(z).
        """
        rule, per_output = self.network.loss_rule, self.network.loss_rule.per_output
        if isinstance(out.rule, Activation):
            folded = folded_loss(rule, out.rule)
            if folded is not None:
                fn = _compile((X, T), folded)
                return lambda z, a, t: fn(z, t)
        if isinstance(out.rule, LayerMap) and per_output.has(sp.log(O)):
            per_output = per_output.xreplace({sp.log(O): LOG_O, sp.log(1 - O): LOG_1MO})
            fn = _compile((O, LOG_O, LOG_1MO, T), per_output)
            # log(1 − o_j) = logsumexp_{k≠j} z − logsumexp z: finite where o_j rounds to 1
            log_1mo = _compile(out.nets, log_one_minus_softmax(out.nets)) if out.size > 1 else None

            def softmax_loss(z: Array, a: Array, t: Array) -> Array:
                shifted = z - z.max(axis=-1, keepdims=True)
                log_o = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
                if log_1mo is None:  # one output: o = 1, and log(1 − o) is −inf indeed
                    rest = np.log1p(-a)
                else:
                    rest = np.stack([_as_array(c, z[..., 0]) for c in log_1mo(*np.moveaxis(z, -1, 0))], axis=-1)
                return fn(a, log_o, rest, t)

            return softmax_loss
        fn = _compile((O, T), per_output)
        return lambda z, a, t: fn(a, t)

    def _compile_layer(self, layer: Layer) -> _Compiled:
        rule = layer.rule
        if isinstance(rule, LayerMap):
            dummies = tuple(sp.Symbol(f"z{j}", real=True) for j in range(layer.size))
            outs = _compile(dummies, list(rule.apply_layer(dummies)))

            def forward(z: Array) -> Array:
                # softmax(z) = softmax(z − max z): shifting keeps exp from overflowing
                shifted = z - z.max(axis=-1, keepdims=True)
                return np.stack([_as_array(c, shifted[..., 0]) for c in outs(*shifted.T)], axis=-1)

            return _Compiled(forward, None)
        assert isinstance(rule, Activation)
        f = _compile((X,), rule.f)
        if rule.fprime_in_out is not None:
            g = _compile((Y,), rule.fprime_in_out)
            return _Compiled(lambda z: _as_array(f(z), z), lambda z, a: _as_array(g(a), a))
        d = _compile((X,), rule.fprime)
        return _Compiled(lambda z: _as_array(f(z), z), lambda z, a: _as_array(d(z), z))

    # -- passes --------------------------------------------------------------

    def forward(self, x: Array | None = None) -> tuple[list[Array], list[Array]]:
        """Nets and outs of every layer for a batch (rows are samples)."""
        a = np.atleast_2d(self.x if x is None else x)
        nets: list[Array] = [a]
        outs: list[Array] = [a]
        with np.errstate(all="ignore"):  # a diverging run is reported by the caller, not by warnings
            for index in range(1, len(self.weights)):
                z = a @ self.weights[index].T
                bias = self.biases[index]
                if bias is not None:
                    z = z + bias
                layer = self.layers[index]
                assert layer is not None
                a = layer.forward(z)
                nets.append(z)
                outs.append(a)
        return nets, outs

    def sample_losses(self, nets: Array, outs: Array, t: Array | None = None) -> Array:
        """Each sample's own loss E[n] (the output layer's nets and outs, a row a sample)."""
        target = np.broadcast_to(self.t if t is None else t, outs.shape)
        with np.errstate(all="ignore"):  # a diverging run is reported by the caller, not by warnings
            per = _as_array(self._loss(nets, outs, target), outs)
        return per.sum(axis=-1) * self._loss_scale

    def _reduced(self, per_sample: Array, samples: int) -> Array:
        """The batch's value from its samples' (summed over axis 0): the mean or the sum, as the spec's loss says."""
        total = per_sample.sum(axis=0)
        return total / samples if self.reduction == "mean" else total

    def loss(self, nets: Array, outs: Array, t: Array | None = None) -> float:
        """E for a batch (the output layer's nets and outs): the samples' losses reduced as the spec says."""
        per = self.sample_losses(nets, outs, t)
        return float(self._reduced(per, per.shape[0]))

    def backward(self, nets: list[Array], outs: list[Array], t: Array | None = None) -> list[Array]:
        """δ of every layer (index 0 unused): each sample's own, ∂E[n]/∂net (no 1/N of a batch mean)."""
        target = np.broadcast_to(self.t if t is None else t, outs[-1].shape)
        last = len(self.weights) - 1
        deltas: list[Array] = [np.zeros(0)] * (last + 1)
        with np.errstate(all="ignore"):  # a diverging run is reported by the caller, not by warnings
            z = nets[last].T
            rests = [] if self._rests is None else [_as_array(r, z[0]) for r in self._rests(*z)]
            columns = self._output_delta(*z, *outs[last].T, *target.T, *rests)
            deltas[last] = np.stack([_as_array(c, nets[last][:, 0]) for c in columns], axis=1)
            for index in range(last - 1, 0, -1):
                layer = self.layers[index]
                assert layer is not None
                back = deltas[index + 1] @ self.weights[index + 1]
                assert layer.derivative is not None  # softmax is allowed on the output layer only
                deltas[index] = back * layer.derivative(nets[index], outs[index])
        return deltas

    def gradients(
        self, x: Array | None = None, t: Array | None = None
    ) -> tuple[float, list[Array], list[Array | None]]:
        """(E, ∂E/∂W per layer, ∂E/∂b per layer) for a batch, reduced over samples as the spec's loss says."""
        nets, outs = self.forward(x)
        deltas = self.backward(nets, outs, t)
        n = nets[0].shape[0]
        scale = 1.0 / n if self.reduction == "mean" else 1.0
        grad_w: list[Array] = [np.zeros((0, 0))]
        grad_b: list[Array | None] = [None]
        for index in range(1, len(self.weights)):
            grad_w.append(scale * (deltas[index].T @ outs[index - 1]))
            bias = self.biases[index]
            if bias is None:
                grad_b.append(None)
            elif bias.ndim == 0:
                grad_b.append(np.array(scale * deltas[index].sum()))  # a shared bias feeds every neuron
            else:
                grad_b.append(scale * deltas[index].sum(axis=0))
        return self.loss(nets[-1], outs[-1], t), grad_w, grad_b

    # -- named numbers ---------------------------------------------------------

    def point(self, sample: int = 0) -> Point:
        """Every symbol's value for one sample (counted from 0): inputs, parameters, targets, nets, outs, δs and E.

        The nets, outs, δs and E are the sample's own: E is its loss E[n], a δ is ∂E[n]/∂net.
        """
        return self.points()[sample]

    def points(self) -> list[Point]:
        """:meth:`point` of every sample, from one pass over the batch."""
        nets, outs = self.forward()
        deltas = self.backward(nets, outs)
        losses = self.sample_losses(nets[-1], outs[-1])
        x_given, t_given = self._given
        return [
            Point(
                self.network,
                Arrays(
                    x=self.x[n] if x_given else None,
                    t=self.t[n] if t_given else None,
                    weights=list(self.weights),
                    biases=list(self.biases),
                    nets=[z[n] for z in nets],
                    outs=[a[n] for a in outs],
                    deltas=[d[n] if d.ndim == 2 else d for d in deltas],
                    loss=float(losses[n]),
                ),
            )
            for n in range(self.x.shape[0])
        ]

    def _by_name(self, weights: list[Array], biases: list[Array | None]) -> dict[str, float]:
        """Per-layer weight and bias arrays read out by spec name, in the spec's order."""
        result: dict[str, float] = {}
        for layer, w, b in zip(self.network.spec.layers[1:], weights[1:], biases[1:]):
            for names, values in zip(layer.weight_names, w.tolist()):
                result.update(zip(names, values))
            if b is not None:
                result.update(zip(layer.bias.names, [float(b)] if b.ndim == 0 else b.tolist()))
        return result

    def parameter_values(self) -> dict[str, float]:
        """Every weight and bias by its spec name."""
        return self._by_name(self.weights, self.biases)

    def named_gradients(self) -> tuple[float, dict[str, float]]:
        """(E, ∂E/∂p for every weight and bias by name)."""
        loss, grad_w, grad_b = self.gradients()
        return loss, self._by_name(grad_w, grad_b)

    # -- training ------------------------------------------------------------

    @cached_property
    def _module(self) -> ModuleType:
        """The exported module's code (without the spec's numbers: the engine holds them), for training."""
        source = VectorModule(self.network.spec, parameters=False).source()
        return compile_module(source, f"{self.network.spec.name}_training")

    def _params(self) -> dict[str, Array]:
        """The parameters as the exported module names them (W2, b2, …)."""
        params: dict[str, Array] = {}
        for index in range(1, len(self.weights)):
            number = index + 1
            params[f"W{number}"] = self.weights[index]
            bias = self.biases[index]
            if bias is not None:
                params[f"b{number}"] = bias
        return params

    def step(self, learning_rate: float, update_biases: bool) -> float:
        """One gradient-descent update with the exported module's loss_and_gradients; returns the loss before it."""
        loss, grads = self._module.loss_and_gradients(self._params(), self.x, self.t)
        for index in range(1, len(self.weights)):
            number = index + 1
            self.weights[index] = self.weights[index] - learning_rate * grads[f"W{number}"]
            bias = self.biases[index]
            if update_biases and bias is not None:
                self.biases[index] = bias - learning_rate * grads[f"b{number}"]
        return float(loss)

    def train(self, steps: int, learning_rate: float | None = None, update_biases: bool | None = None) -> list[float]:
        """Run ``steps`` updates; the losses before each update and after the last.

        The parameters at the first loss that is not a float are kept for :meth:`breakdown`.
        """
        training = self.network.spec.training
        lr = training.learning_rate if learning_rate is None else learning_rate
        update = training.update_biases if update_biases is None else update_biases
        self._breakdown = None
        history: list[float] = []
        with np.errstate(all="ignore"):  # a diverging run shows in the history, not as warnings
            for _ in range(steps + 1):
                before = (list(self.weights), list(self.biases))
                loss = self.step(lr, update) if len(history) < steps else self.current_loss()
                if self._breakdown is None and not np.isfinite(loss):
                    self._breakdown = (len(history), loss, before)
                history.append(loss)
        return history

    def breakdown(self, history: list[float]) -> Breakdown | None:
        """Why the last :meth:`train` run's loss stopped being a float, or None if it never did."""
        if self._breakdown is None:
            return None
        step, loss, (weights, biases) = self._breakdown
        finite = [e for e in history[:step] if np.isfinite(e)]
        parameters = self._by_name(weights, biases)
        if not all(np.isfinite(v) for v in parameters.values()):
            return Breakdown(step, loss, None, True, history[0], max(finite, default=loss))
        engine = Compiled.__new__(Compiled)
        engine.__dict__.update(self.__dict__)
        engine.weights, engine.biases = list(weights), list(biases)
        exact = reduce_exact([exact_point(self.network, p).get(LOSS_SYMBOL) for p in engine.points()], self.reduction)
        representable = exact is not None and bool(np.isfinite(float(exact)))
        return Breakdown(step, loss, exact, not representable, history[0], max(finite, default=loss))

    def current_loss(self) -> float:
        nets, outs = self.forward()
        return self.loss(nets[-1], outs[-1])

    def outputs(self) -> list[list[float]]:
        """The outputs of every sample, a row a sample."""
        _, outs = self.forward()
        return [[float(v) for v in row] for row in outs[-1]]


@dataclass(frozen=True)
class Breakdown:
    """The first step at which a training run's loss was not a float, and why."""

    step: int
    loss: float  # what the compiled passes gave: inf or nan
    exact: Number | None  # the loss at that step's parameters, recomputed exactly
    diverged: bool  # the loss itself left float64's range (or the parameters did); else an intermediate did
    first: float  # the loss before the first step
    largest: float  # the largest finite loss before the step

    def message(self) -> str:
        """One sentence for a person."""
        if self.diverged:
            return (
                f"training diverged: the loss grew from {self.first:.6g} to {self.largest:.6g} "
                f"and is {self.loss} after {self.step} steps"
            )
        return (
            f"after {self.step} steps the loss is {float(self.exact or 0):.6g}, but an intermediate number "
            f"left float64's range, so the passes gave {self.loss}: the run stopped making progress, it did not diverge"
        )


def _bias_array(layer: LayerSpec) -> Array | None:
    kind = layer.bias.kind
    if kind is BiasKind.NONE:
        return None
    if kind is BiasKind.SHARED:
        return np.array(layer.bias.values[0], dtype=float)
    return np.array(layer.bias.values, dtype=float)
