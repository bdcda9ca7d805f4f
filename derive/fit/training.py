"""`derive fit`: train a spec's network on a data set with its generated module.

The module is the one `derive export` writes, executed in-process; its
``fit`` runs the epochs, so what derive measures is what a user of the
exported file gets. Scaling is computed on the training rows and, where the
first layer has a bias per neuron, folded into its weights and biases, so the
saved parameters take raw inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.worked import Worked

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..codegen.modules import compile_module, vector_module
from ..files import write_atomic
from .data import Dataset, Scaling, scaling, split

# losses whose targets are probabilities
_UNIT_TARGETS = ("bce", "cross_entropy")


@dataclass(frozen=True)
class FitOptions:
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float | None = None  # None: the spec's
    test_fraction: float = 0.25
    seed: int = 0  # the split and the shuffling; the initial weights are the spec's
    scale: str = "standard"  # by the training rows' mean and std: sigmoid layers learn better than on raw pixels


@dataclass(frozen=True)
class FitResult:
    epochs: int
    batch_size: int
    learning_rate: float
    train_rows: int
    test_rows: int
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float  # the training loop alone, without progress reports
    params: dict[str, np.ndarray]  # for raw inputs when ``scaling_folded``
    scaling_folded: bool
    scaling: Scaling | None = None  # the inputs' (X − shift)/scale the params expect, when it is not folded

    def summary(self) -> dict[str, Any]:
        """The JSON answer of `derive fit`."""
        return {
            "epochs": self.epochs,
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            "test_loss": self.test_loss,
            "test_accuracy": self.test_accuracy,
            "seconds": self.seconds,
        }


def target_range(model: Worked) -> tuple[float, float] | None:
    """Bounds of the targets the spec's loss accepts: [0, 1] for the cross-entropies."""
    return (0.0, 1.0) if model.spec.loss.kind in _UNIT_TARGETS else None


def fit(
    model: Worked,
    data: Dataset,
    options: FitOptions,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> FitResult:
    """Train from the spec's initial parameters; ``on_epoch(epoch, train loss, train accuracy)`` after each epoch."""
    module = compile_module(vector_module(model), model.spec.name)
    train, test = split(data, options.test_fraction, options.seed)
    scaled = scaling(train.X, options.scale)
    shape = model.spec.layers[0].shape  # maps: a data row is one sample's maps, flattened channel first

    def shaped(rows: np.ndarray) -> np.ndarray:
        return rows.reshape(rows.shape[0], *shape) if shape else rows

    X, T = shaped(scaled.apply(train.X)), train.T
    lr = model.spec.training.learning_rate if options.learning_rate is None else options.learning_rate
    reporting = 0.0

    def callback(epoch: int, params: dict[str, np.ndarray]) -> None:
        nonlocal reporting
        start = time.perf_counter()
        assert on_epoch is not None
        on_epoch(epoch, float(module.loss(params, X, T)), module.accuracy(params, X, T))
        reporting += time.perf_counter() - start

    with np.errstate(all="ignore"):  # a diverging run is reported by its loss, not by warnings
        start = time.perf_counter()
        params = module.fit(
            module.init_params(),
            X,
            T,
            epochs=options.epochs,
            batch_size=options.batch_size,
            lr=lr,
            seed=options.seed,
            callback=callback if on_epoch else None,
        )
        seconds = time.perf_counter() - start - reporting
        train_loss, train_accuracy = float(module.loss(params, X, T)), module.accuracy(params, X, T)
        test_loss = test_accuracy = None
        if test is not None:
            test_X = shaped(scaled.apply(test.X))
            test_loss, test_accuracy = (
                float(module.loss(params, test_X, test.T)),
                module.accuracy(params, test_X, test.T),
            )
    folded = fold_scaling(params, scaled)
    return FitResult(
        epochs=options.epochs,
        batch_size=options.batch_size,
        learning_rate=lr,
        train_rows=train.rows,
        test_rows=0 if test is None else test.rows,
        train_loss=train_loss,
        train_accuracy=train_accuracy,
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        seconds=seconds,
        params=folded if folded is not None else params,
        scaling_folded=folded is not None,
        scaling=None if folded is not None else scaled,
    )


def fold_scaling(params: dict[str, np.ndarray], scaled: Scaling) -> dict[str, np.ndarray] | None:
    """Parameters that take raw inputs: z = W((x − s)/c) + b = (W/c)x + (b − (W/c)s).

    None when the first layer has no bias per neuron to absorb the shift.
    """
    if scaled.kind == "none":
        return dict(params)
    W, b = params["W2"], params.get("b2")
    if b is None or b.ndim != 1 or W.ndim != 2:  # a kernel is shared across positions: no per-input scale fits it
        return None
    if W.shape[1] != scaled.scale.size:  # an rnn's W2 is shared by every time step: one column per feature
        return None
    W_raw = W / scaled.scale
    return {**params, "W2": W_raw, "b2": b - W_raw @ scaled.shift}


def scaling_path(path: str | Path) -> Path:
    """Where ``derive fit`` saves the inputs' scaling when the parameters cannot absorb it: x.scaling.npz."""
    target = Path(path)
    return target.with_name(target.stem + ".scaling.npz")


def save_fit(result: FitResult, path: str | Path) -> Path | None:
    """The trained parameters to ``path``; when they expect scaled inputs, the scaling too (``shift`` and
    ``scale``: the module takes (X − shift)/scale, X flattened row by row), beside them. Gives that file."""
    save_params(result.params, path)
    if result.scaling is None or result.scaling.kind == "none":
        return None
    beside = scaling_path(path)
    save_params({"shift": result.scaling.shift, "scale": result.scaling.scale}, beside)
    return beside


def save_params(params: dict[str, np.ndarray], path: str | Path) -> None:
    """Write params as .npz (the module's keys), whole or not at all (:func:`derive.files.write_atomic`)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    arrays: dict[str, Any] = dict(params)
    np.savez(buffer, **arrays)
    write_atomic(target, buffer.getvalue())
