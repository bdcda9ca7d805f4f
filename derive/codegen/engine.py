"""The floats of a network: its parameters as arrays, every number from the generated module.

The module is the one ``derive export`` writes (:class:`derive.codegen.modules.VectorModule`), with one more
function, ``trace``, that returns every layer's z, a and each sample's δ and loss. So the CLI's numbers,
training, ``check X@N`` and the lecture's tables come from the same stable forms as the export (σ
without underflow to 0, log(1 + eᵘ) as logaddexp, log-softmax, the bounded δ of bce over softmax), and
nothing here writes a forward or backward pass of its own. The exact numbers for showing digits are
:func:`derive.core.chain.exact_point`'s. Nothing is substituted into sympy at each training step, so
``derive train mazur --steps 10000`` takes well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..core.chain import exact_point
from ..core.init import weights as init_weights
from ..core.layers import weight_arrays, weight_matrix
from ..core.network import LOSS_SYMBOL, Network
from ..core.point import Arrays, Point
from ..core.policy import Number, reduce_exact
from ..spec.reading import BiasKind, LayerSpec
from .modules import VectorModule, compile_module

Array = np.ndarray


@dataclass(frozen=True)
class Trace:
    """One pass over a batch: nets, outs and δs by layer index (0 is the input layer), each sample's loss.

    A δ is the sample's own, ∂E[n]/∂net, not divided by the batch.
    """

    nets: list[Array]
    outs: list[Array]
    deltas: list[Array]
    losses: Array


class Compiled:
    """The network's numbers: parameters as arrays, passes from the generated module."""

    def __init__(self, network: Network) -> None:
        self.network = network
        spec = network.spec
        # (step, loss, (weights, biases)) at the first loss of a training run that is not a float
        self._breakdown: tuple[int, float, tuple[list[Array], list[Array | None]]] | None = None
        self.weights: list[Array] = [np.zeros((0, 0))]
        self.biases: list[Array | None] = [None]
        for layer in network.layers[1:]:
            self.weights.append(init_weights(spec, layer.index))
            self.biases.append(_bias_array(layer.spec))
        inputs, targets_given = spec.layers[0].samples, spec.layers[-1].target_samples
        self._given = (inputs is not None, targets_given is not None)
        samples = spec.samples
        out = spec.layers[-1]
        # one row a sample (the batch of the spec); nan where the spec leaves the numbers out
        self.x = np.array(inputs if inputs is not None else [[np.nan] * spec.layers[0].size] * samples, dtype=float)
        self._routes: dict[int, Array] = {}
        self.t = np.array(targets_given if targets_given is not None else [[np.nan] * out.size] * samples, dtype=float)
        self.reduction = spec.loss.reduction
        # the exported module's code, without the spec's numbers (the engine holds them), with trace()
        source = VectorModule(spec, parameters=False, trace=True).source()
        self._module: ModuleType = compile_module(source, f"{spec.name}_numbers")
        self.state: dict[str, Any] = self._module.init_state(self._params())  # the optimiser's, before its first step

    def _params(self) -> dict[str, Array]:
        """The parameters as the exported module names them (W2, b2, …)."""
        params: dict[str, Array] = {}
        layers = self.network.spec.layers
        for index in range(1, len(self.weights)):
            number = index + 1
            # kept as a matrix, a row per unit in the names' order: a conv's W is 4-D in the module, an rnn's [W | U]
            params.update(weight_arrays(layers[index], self.weights[index]))
            bias = self.biases[index]
            if bias is not None:
                params[f"b{number}"] = bias
        return params

    def _batch(self, x: Array | None, t: Array | None) -> tuple[Array, Array]:
        X = np.atleast_2d(self.x if x is None else x)
        T = np.broadcast_to(self.t if t is None else t, (X.shape[0], self.t.shape[-1]))
        shape = self.network.spec.layers[0].shape
        if shape:  # maps: (batch, C, H, W) for the module, a flat row per sample here
            X = X.reshape(X.shape[0], *shape)
        return X, T

    @staticmethod
    def _rows(array: Array) -> Array:
        """A layer's numbers as a row per sample, maps flattened channel first (the neurons' order)."""
        return array.reshape(array.shape[0], -1) if array.ndim > 2 else array

    # -- passes --------------------------------------------------------------

    def trace(self, x: Array | None = None, t: Array | None = None) -> Trace:
        """Every layer's numbers for a batch (rows are samples; the spec's batch by default)."""
        X, T = self._batch(x, t)
        with np.errstate(all="ignore"):  # a diverging run is reported by the caller, not by warnings
            found = self._module.trace(self._params(), X, T)
        numbers = [int(layer.number) for layer in self.network.spec.layers[1:]]
        rows = self._rows
        if x is None:  # the spec's own batch: its max pools' winners, for the derivations
            self._routes = {n - 1: found[f"r{n}"] for n in numbers if f"r{n}" in found}
        return Trace(
            nets=[rows(X), *(rows(found[f"z{n}"]) for n in numbers)],
            outs=[rows(X), *(rows(found[f"a{n}"]) for n in numbers)],
            deltas=[np.zeros(0), *(rows(found[f"d{n}"]) for n in numbers)],
            losses=np.asarray(found["losses"], dtype=float),
        )

    def routes(self, index: int, sample: int = 0) -> list[int]:
        """Max-pool layer ``index``'s winners for one sample: for each of its nets, the previous layer's out it
        passes on (flat, channel first), as the float pass chose them (the first largest of each window)."""
        from ..core.layers import windows

        if index not in self._routes:
            self.trace()
        layer = self.network.spec.layers[index]
        assert layer.geometry is not None
        table = windows(layer.geometry)
        entry = self._routes[index][sample].reshape(layer.geometry.in_shape[0], -1)  # (C, positions)
        spatial = table.spatial[np.arange(table.positions), entry]  # the winner's position in its channel
        return (spatial + np.arange(entry.shape[0])[:, None] * table.area).reshape(-1).tolist()

    def forward(self, x: Array | None = None) -> tuple[list[Array], list[Array]]:
        """Nets and outs of every layer for a batch (rows are samples)."""
        found = self.trace(x)
        return found.nets, found.outs

    def gradients(
        self, x: Array | None = None, t: Array | None = None
    ) -> tuple[float, list[Array], list[Array | None]]:
        """(E, ∂E/∂W per layer, ∂E/∂b per layer) for a batch, reduced over samples as the spec's loss says."""
        X, T = self._batch(x, t)
        with np.errstate(all="ignore"):
            loss, grads = self._module.loss_and_gradients(self._params(), X, T)
        grad_w: list[Array] = [np.zeros((0, 0))]
        grad_b: list[Array | None] = [None]
        layers = self.network.spec.layers
        for index in range(1, len(self.weights)):
            number = index + 1
            matrix = weight_matrix(layers[index], grads)
            if matrix is None:  # a pool
                grad_w.append(np.zeros((0, 0)))
                grad_b.append(None)
                continue
            grad_w.append(matrix)
            grad_b.append(None if self.biases[index] is None else np.asarray(grads[f"b{number}"]))
        return float(loss), grad_w, grad_b

    # -- named numbers ---------------------------------------------------------

    def point(self, sample: int = 0) -> Point:
        """Every symbol's value for one sample (counted from 0): inputs, parameters, targets, nets, outs, δs and E.

        The nets, outs, δs and E are the sample's own: E is its loss E[n], a δ is ∂E[n]/∂net.
        """
        return self.points()[sample]

    def points(self) -> list[Point]:
        """:meth:`point` of every sample, from one pass over the batch."""
        found = self.trace()
        x_given, t_given = self._given
        return [
            Point(
                self.network,
                Arrays(
                    x=self.x[n] if x_given else None,
                    t=self.t[n] if t_given else None,
                    weights=list(self.weights),
                    biases=list(self.biases),
                    nets=[z[n] for z in found.nets],
                    outs=[a[n] for a in found.outs],
                    deltas=[d[n] if d.ndim == 2 else d for d in found.deltas],
                    loss=float(found.losses[n]),
                ),
            )
            for n in range(self.x.shape[0])
        ]

    def _by_name(self, weights: Sequence[Array | None], biases: Sequence[Array | None]) -> dict[str, float]:
        """Per-layer weight and bias arrays read out by spec name, in the spec's order (None: left out)."""
        result: dict[str, float] = {}
        for layer, w, b in zip(self.network.spec.layers[1:], weights[1:], biases[1:]):
            if w is not None:
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

    def step(self, learning_rate: float) -> float:
        """One update with the module's loss_and_gradients and its update (the optimiser's rule); the loss before it."""
        with np.errstate(all="ignore"):
            params = self._params()
            loss, grads = self._module.loss_and_gradients(params, *self._batch(None, None))
            new, self.state = self._module.update(params, grads, self.state, learning_rate)
        layers = self.network.spec.layers
        for index in range(1, len(self.weights)):
            number = index + 1
            matrix = weight_matrix(layers[index], new)
            if matrix is None:  # a pool
                continue
            self.weights[index] = matrix
            if self.biases[index] is not None:
                self.biases[index] = new[f"b{number}"]
        return float(loss)

    def train(self, steps: int, learning_rate: float | None = None) -> list[float]:
        """Run ``steps`` updates; the losses before each update and after the last.

        The parameters at the first loss that is not a float are kept for :meth:`breakdown`.
        """
        training = self.network.spec.training
        lr = training.learning_rate if learning_rate is None else learning_rate
        self._breakdown = None
        history: list[float] = []
        with np.errstate(all="ignore"):  # a diverging run shows in the history, not as warnings
            for _ in range(steps + 1):
                before = (list(self.weights), list(self.biases))
                loss = self.step(lr) if len(history) < steps else self.current_loss()
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

    def state_values(self, name: str) -> dict[str, float]:
        """The optimiser's buffer ``name`` (torch's: exp_avg, momentum_buffer, …) for every trained parameter."""
        arrays = self.state.get(name, {})
        numbers = [layer.number for layer in self.network.spec.layers[1:]]
        weights = [None, *(weight_matrix(layer, arrays) for layer in self.network.spec.layers[1:])]
        biases = [None, *(arrays.get(f"b{n}") for n in numbers)]
        return self._by_name(weights, biases)  # biases the optimiser leaves alone have no buffer

    def current_loss(self) -> float:
        """E at the current parameters, over the spec's batch."""
        with np.errstate(all="ignore"):
            return float(self._module.loss(self._params(), *self._batch(None, None)))

    def outputs(self) -> list[list[float]]:
        """The outputs of every sample, a row a sample."""
        with np.errstate(all="ignore"):
            return np.asarray(self._module.forward(self._params(), self._batch(None, None)[0]), dtype=float).tolist()


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
