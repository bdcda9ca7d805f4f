"""The library entry point: a spec, its network, its numbers and its derivations."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sympy as sp

from .chain import Derivation, Number, derive, derive_all, exact_point
from .errors import DeriveError
from .network import LOSS_SYMBOL, Network
from .numeric import Compiled
from .point import Point
from .spec import Spec, load_spec


@dataclass
class Model:
    """A loaded spec with everything derived from it, computed on first use.

    >>> m = Model.load("mazur")
    >>> round(m.derivation("w5").value, 9)
    0.082167041
    """

    spec: Spec

    @cached_property
    def network(self) -> Network:
        """The symbolic network, built on first use (a big network has many symbols)."""
        return Network(self.spec)

    @classmethod
    def load(cls, ref: str | Path) -> Model:
        """Load a spec file, or a built-in example by name."""
        return cls(load_spec(ref))

    @property
    def has_numbers(self) -> bool:
        return not self.network.missing_numbers()

    def compiled(self) -> Compiled:
        """A fresh numeric engine at the spec's parameters (training mutates it)."""
        self.network.require_numbers("computing numbers")
        return Compiled(self.network)

    @cached_property
    def _engine(self) -> Compiled:
        """The numeric engine at the spec's parameters, for reading (never trained)."""
        return Compiled(self.network)

    @cached_property
    def point(self) -> Point | None:
        """Every symbol's value at the spec's numbers, or None when inputs or targets are missing."""
        if not self.has_numbers:
            return None
        point = self._engine.point()
        for layer in self.network.layers[1:]:
            for n in layer.neurons:
                for symbol in (n.net, n.out):
                    if symbol is not None and not math.isfinite(point[symbol]):
                        exact = exact_point(self.network, point).get(symbol)
                        if exact is not None and math.isfinite(float(exact)):
                            problem = f"is {float(exact):.6g}, but an intermediate of it leaves float64's range"
                        else:
                            problem = "is not finite there"
                        raise DeriveError(
                            f"the forward pass gives {symbol.name} = {point[symbol]}: "
                            f"layer {layer.number}'s activation {layer.spec.activation!r} {problem}",
                            where=self.spec.source,
                            hint="check the activation's domain and the spec's numbers",
                        )
        return point

    def symbol(self, name: str) -> sp.Symbol:
        return self.network.lookup(name)

    def derivation(self, name: str) -> Derivation:
        """∂E/∂name for a weight, bias, input, net or out."""
        return derive(self.network, self.symbol(name), self.point)

    def derivations(self) -> dict[str, Derivation]:
        """A derivation for every weight and bias."""
        return derive_all(self.network, self.point)

    def gradients(self) -> tuple[float, dict[str, float]]:
        """(E, ∂E/∂p for every weight and bias), from the compiled passes."""
        return self.compiled().named_gradients()

    def gradient_values(self) -> tuple[float, dict[str, Number | None]]:
        """(E, ∂E/∂p for every weight and bias by name) at the spec's numbers, as derivations give them.

        The numbers are the compiled passes' (a derivation's value is the same δ form); only where one is
        not a float is that parameter derived, for its exactly evaluated value.
        """
        point = self.point
        assert point is not None, "needs the spec's numbers (Network.require_numbers)"
        _, grads = self._engine.named_gradients()
        values: dict[str, Number | None] = dict(grads)
        for name, value in grads.items():
            if not math.isfinite(value):
                values[name] = derive(self.network, self.symbol(name), point).value
        return point[LOSS_SYMBOL], values

    def parameter_values(self) -> dict[str, float]:
        """Every weight and bias by name: the spec's, or drawn from its seed."""
        return self._engine.parameter_values()

    def path_counts(self) -> dict[str, int]:
        """How many chain-rule paths lead from each weight and bias to E."""
        return self.network.path_counts()
