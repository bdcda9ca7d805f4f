"""What the features (lectures, checks, sheets, overviews, fitting) need of a loaded spec: Protocols.

:class:`derive.app.api.Model` is a :class:`Worked`, and its engine
(:class:`derive.codegen.engine.Compiled`) an :class:`Engine`; the features name these types instead of
the façade or the engine, so nothing below the façade imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from ..spec.reading import Spec
    from .network import Network
    from .point import Point
    from .policy import Number


class Engine(Protocol):
    """The float engine (:class:`derive.codegen.engine.Compiled`): parameters as arrays, numbers from the module."""

    weights: list[np.ndarray]
    biases: list[np.ndarray | None]
    state: dict[str, Any]  # the optimiser's: "step" and each buffer by the module's keys

    def state_values(self, name: str) -> dict[str, float]: ...

    def train(self, steps: int, learning_rate: float | None = None) -> list[float]: ...

    def points(self) -> list[Point]: ...

    def trace(self, x: np.ndarray | None = None, t: np.ndarray | None = None) -> Any: ...

    def gradients(
        self, x: np.ndarray | None = None, t: np.ndarray | None = None
    ) -> tuple[float, list[np.ndarray], list[np.ndarray | None]]: ...

    def named_gradients(self) -> tuple[float, dict[str, float]]: ...

    def parameter_values(self) -> dict[str, float]: ...

    def current_loss(self) -> float: ...

    def outputs(self) -> list[list[float]]: ...


class Worked(Protocol):
    """A spec with its network and its numbers: every sample's point, the batch's loss, a fresh engine."""

    @property
    def spec(self) -> Spec: ...

    @property
    def network(self) -> Network: ...

    @property
    def samples(self) -> int: ...

    @property
    def is_batch(self) -> bool: ...

    @property
    def has_numbers(self) -> bool: ...

    @property
    def points(self) -> tuple[Point, ...] | None: ...

    @property
    def point(self) -> Point | None: ...

    @property
    def loss(self) -> Number | None: ...

    def sample(self, n: int) -> Worked: ...

    def compiled(self) -> Engine: ...

    def parameter_values(self) -> dict[str, float]: ...
