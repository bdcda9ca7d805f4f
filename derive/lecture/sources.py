"""What a published article prints, against the computed numbers: which source prints what, and why a
number differs when a cause can be checked.

A cause is named only when derive reproduces the printed number by it, to every digit printed:
rounding (the number agrees), the loss after one update fewer, a slip in writing a number down (the
same source's next number, ∂E/∂out, is right: it was computed from the right value), or the classic
slip of computing the hidden δs with the output weights already updated (Mazur's 0.291027924).
Where another source prints the right value the lecture says so; otherwise that it finds no cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..core.worked import Worked
    from ..spec.reading import PublishedSpec


@dataclass(frozen=True)
class Printed:
    """One source's number for a quantity, with the verdict of ``derive check``'s rule."""

    source: str
    text: str
    agrees: bool
    values: tuple[tuple[str, str], ...] = ()  # everything the same source prints (its own next numbers)

    def next_number(self, key: str) -> str | None:
        """What the same source prints for ``key`` (the number it computed next from this one)."""
        return dict(self.values).get(key)


def printed(published: PublishedSpec, key: str, value: float, zh: bool) -> list[Printed]:
    """Every source that prints ``key``, with whether its number is ``value`` rounded or truncated."""
    from ..check.claims import is_ok

    out = []
    for source in published.sources():
        found = dict(source.values).get(key)
        if found is not None:
            name = source.source_zh if zh and source.source_zh else source.source
            out.append(Printed(name, found, is_ok(Decimal(found), float(value)), source.values))
    return out


def agrees(text: str, value: float) -> bool:
    from ..check.claims import is_ok

    return bool(is_ok(Decimal(text), float(value)))


def updated_weights_run(model: Worked, steps: int) -> tuple[list[float], list[float]] | None:
    """Plain gradient descent in which each layer's δs come from the weights above them *after* their
    update (the output layer is updated first, then the hidden δs use its new weights).

    Gives (the loss before each update and after the last, the outputs after the last update), or None
    where this slip cannot be reproduced: a batch, an optimiser with state, a layer that is not an
    elementwise activation (softmax), or a δ whose f' cannot be recovered.
    """
    from ..core.optimizer import Optimizer
    from ..core.rules import Activation

    if model.is_batch or Optimizer.of(model.spec).settings_beyond_sgd:
        return None
    net = model.network
    if any(not isinstance(layer.rule, Activation) for layer in net.layers[1:]):
        return None
    engine = model.compiled()
    training = model.spec.training
    lr = training.learning_rate
    losses: list[float] = []
    with np.errstate(all="ignore"):
        for step in range(steps + 1):
            trace = engine.trace()
            losses.append(float(trace.losses[0]))
            if step == steps:
                break
            top = len(engine.weights) - 1
            delta = trace.deltas[top][0]
            for index in range(top, 0, -1):
                old = engine.weights[index]
                engine.weights[index] = old - lr * np.outer(delta, trace.outs[index - 1][0])
                bias = engine.biases[index]
                if bias is not None and training.update_biases:
                    g = delta if bias.ndim else np.sum(delta)
                    engine.biases[index] = bias - lr * g
                if index == 1:
                    break
                # f'(net) of the layer below, from the module's own δ: δ = (Wᵀ δ_above) ⊙ f'(net)
                back = old.T @ trace.deltas[index][0]
                if np.any(back == 0):
                    return None
                slope = trace.deltas[index - 1][0] / back
                delta = (engine.weights[index].T @ delta) * slope
    outputs = [float(v) for v in engine.outputs()[0]]
    return losses, outputs
