"""What the features (lectures, checks, sheets, overviews, fitting) need of a loaded spec: a Protocol.

:class:`derive.api.Model` is one; the features name this type instead of the façade, so nothing below the
façade imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .network import Network
    from .numeric import Compiled
    from .point import Point
    from .policy import Number
    from .spec import Spec


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

    def compiled(self) -> Compiled: ...

    def parameter_values(self) -> dict[str, float]: ...
