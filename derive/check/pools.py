"""Max-pool winners along float64's training run: whether the exact run would pick the same ones.

After N updates a claim is judged from the float64 run (see :mod:`derive.check.exact`). A max pool passes
on each window's largest entry, decided by that step's numbers: where float64's winner and runner-up are
closer than float64's error in them, the exact run might route δ to the other entry, and from that step on
the two runs follow different rules. Each window is checked at every step from 0 to N:

- the error of an entry (a pool's input) is the parameters' float64 trust (``POLICY.noise``, relative, as
  dense nets' claims after N updates assume: :meth:`derive.check.exact.Precise.drift`) carried to it: the
  largest change of the entry over :data:`TRIALS` shifts of every parameter by that much (signs from a fixed
  seed), times 3, and the entry's own ``POLICY.noise`` relative;
- a window is *clear* when the gap between its winner and its runner-up exceeds the sum of their errors.
  A window whose entries are all exactly 0 after a relu (at rest, with its error 0) is clear: its δ is 0
  whichever entry wins.

When every window is clear at every step the run is routed as the exact one is, and a claim is judged as a
dense net's (exactly at float64's parameters, with their drift); otherwise the first window too close to call
is reported with the claim, which is judged from float64's own value at :data:`CLOSE_TRUST`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..codegen.engine import Compiled

TRIALS = 3  # parameter shifts per step (as Precise.drift)
CLOSE_TRUST = 1e-6  # relative: the trust stated for a claim whose run passed a window too close to call


@dataclass(frozen=True)
class Window:
    """A max-pool window at one step of the run: where it is, its gap (winner − runner-up) and the bound."""

    step: int  # updates before this forward pass (0: the spec's own parameters)
    sample: int  # counted from 1
    layer: int  # the pool's layer index (0: the input layer)
    channel: int  # counted from 1
    position: int  # the window's output position in its channel, counted from 1 (row-major)
    winner: float
    runner_up: float
    gap: float
    bound: float

    def text(self) -> str:
        return (
            f"max-pool window {self.position} of channel {self.channel} (layer {self.layer}"
            + (f", sample {self.sample}" if self.sample > 1 else "")
            + f") after {self.step} update{'s' if self.step != 1 else ''} is too close to call: winner "
            f"{self.winner:.17g}, runner-up {self.runner_up:.17g}, gap {self.gap:.3g} ≤ their float64 error "
            f"{self.bound:.3g}"
        )


def entry_errors(engine: Compiled, outs: list[np.ndarray], layers: list[int]) -> dict[int, np.ndarray]:
    """For each layer index in ``layers`` (a pool's input layer), each entry's error (rows are samples): the
    parameters' trust carried to it (see the module's docstring)."""
    from ..core.policy import POLICY

    eps = POLICY.noise
    rng = np.random.default_rng(0)
    weights, biases = list(engine.weights), list(engine.biases)
    worst = {i: np.zeros_like(outs[i]) for i in layers}
    try:
        for _ in range(TRIALS):
            engine.weights = [w * (1 + eps * rng.choice((-1.0, 1.0), size=np.shape(w))) for w in weights]
            engine.biases = [
                None if b is None else b * (1 + eps * rng.choice((-1.0, 1.0), size=np.shape(b))) for b in biases
            ]
            shifted = engine.trace(engine.x).outs  # a batch given: the spec's routes are left alone
            for i in layers:
                worst[i] = np.maximum(worst[i], np.abs(shifted[i] - outs[i]))
    finally:
        engine.weights, engine.biases = weights, biases
    return {i: 3 * worst[i] + eps * np.abs(outs[i]) for i in layers}


def close_windows(engine: Compiled, step: int) -> list[Window]:
    """The windows of every max pool that are too close to call at the engine's current parameters."""
    from ..core.layers import windows

    spec = engine.network.spec
    pools = [i for i, layer in enumerate(spec.layers) if layer.kind.startswith("maxpool")]
    if not pools:
        return []
    outs = engine.trace(engine.x).outs
    errors = entry_errors(engine, outs, [i - 1 for i in pools])
    found: list[Window] = []
    for index in pools:
        layer = spec.layers[index]
        geometry: Any = layer.geometry
        table = windows(geometry)
        channels = geometry.in_shape[0]
        relu = spec.layers[index - 1].activation == "relu"
        inside = table.spatial >= 0
        spatial = np.where(inside, table.spatial, 0)
        for sample in range(outs[index - 1].shape[0]):
            values = outs[index - 1][sample].reshape(channels, table.area)[:, spatial]  # (C, positions, entries)
            error = errors[index - 1][sample].reshape(channels, table.area)[:, spatial]
            values = np.where(inside, values, -np.inf)
            if values.shape[-1] < 2:
                continue
            first = np.argmax(values, axis=-1)  # the first largest, as the float pass picks
            top = np.take_along_axis(values, first[..., None], -1)[..., 0]
            top_error = np.take_along_axis(error, first[..., None], -1)[..., 0]
            rest = values.copy()
            np.put_along_axis(rest, first[..., None], -np.inf, -1)
            second_at = np.argmax(rest, axis=-1)
            second = np.take_along_axis(values, second_at[..., None], -1)[..., 0]
            second_error = np.take_along_axis(error, second_at[..., None], -1)[..., 0]
            gap, bound = top - second, top_error + second_error
            at_rest = relu & (top == 0) & (bound == 0)
            for c, p in zip(*np.nonzero((gap <= bound) & ~at_rest)):
                found.append(
                    Window(
                        step,
                        sample + 1,
                        index,
                        int(c) + 1,
                        int(p) + 1,
                        float(top[c, p]),
                        float(second[c, p]),
                        float(gap[c, p]),
                        float(bound[c, p]),
                    )
                )
    return found
