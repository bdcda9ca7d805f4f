"""What a claim names (:class:`Quantity`) and how many digits a number shows: the words every part of
``derive check`` shares (claims, the exact judge, the named mistakes), in the one module none of them
depends on."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum


def significant_digits(number: Decimal) -> int:
    digits = number.as_tuple().digits
    while len(digits) > 1 and digits[0] == 0:
        digits = digits[1:]
    return max(len(digits), 1)


class Kind(Enum):
    VALUE = "value"  # a symbol of the spec, or E
    ERROR = "error"  # E_k: one output's term of the loss
    DELTA = "delta"  # δ of a neuron
    GRAD = "grad"  # dE/dX
    PARTIAL = "partial"  # dE_k/dX
    FACTOR = "factor"  # d head / d tail along one edge
    STATE = "state"  # an optimiser's buffer for a parameter, torch's name: exp_avg(w5)


@dataclass(frozen=True)
class Quantity:
    """What a claim names. ``of`` is a symbol name, "E" or a neuron label; ``wrt`` the symbol differentiated by."""

    kind: Kind
    of: str
    wrt: str = ""
    step: int = 0
    sample: int = 0  # 1, 2, …: one sample's own; 0: the batch's (reduced over samples), or a single sample

    @property
    def name(self) -> str:
        """The canonical spelling: out_o1, E_o1, delta_h1, dE/dw5, dE_o2/dout_h1, dout_o1/dnet_o1, E@10000."""
        base = {
            Kind.VALUE: self.of,
            Kind.ERROR: f"E_{self.of}",
            Kind.DELTA: f"delta_{self.of}",
            Kind.GRAD: f"dE/d{self.wrt}",
            Kind.PARTIAL: f"dE_{self.of}/d{self.wrt}",
            Kind.FACTOR: f"d{self.of}/d{self.wrt}",
            Kind.STATE: f"{self.of}({self.wrt})",
        }[self.kind]
        if self.sample:
            base = f"{base}[{self.sample}]"
        return f"{base}@{self.step}" if self.step else base
