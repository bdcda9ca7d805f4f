"""The optimiser's update, in one home: its rule is written once, as sympy, and read three ways.

- ``derive check`` explains a wrong ``w1@3`` from the rule with the claimed numbers put in
  (:meth:`SGD.update`);
- the generated module's ``update`` (and ``train_step``, which calls it) is :meth:`SGD.rule` printed as
  NumPy by the code generator;
- derive's own training (``derive train``, ``check X@N``, the lecture's run) calls that generated
  ``update``: no update is written anywhere else.

Plain gradient descent is the first optimiser; one with state (momentum, Adam) adds its state here.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..spec.reading import Spec

PARAMETER = sp.Symbol("p", real=True)
GRADIENT = sp.Symbol("g", real=True)
RATE = sp.Symbol("eta", positive=True)


@dataclass(frozen=True)
class SGD:
    """Gradient descent: p ← p − η·∂E/∂p; biases stay where they are when ``update_biases`` is False."""

    learning_rate: float
    update_biases: bool = True
    name = "sgd"

    @classmethod
    def of(cls, spec: Spec) -> SGD:
        """The spec's [training] optimiser."""
        return cls(spec.training.learning_rate, spec.training.update_biases)

    def rule(self) -> sp.Expr:
        """The update in PARAMETER, GRADIENT and RATE."""
        return PARAMETER - RATE * GRADIENT

    def updates(self, is_bias: bool) -> bool:
        """Whether the parameter moves at all."""
        return self.update_biases or not is_bias

    def update(self, parameter: sp.Expr, gradient: sp.Expr, is_bias: bool = False) -> sp.Expr:
        """The parameter after one update, in the given expressions (symbols or numbers), at the spec's rate."""
        if not self.updates(is_bias):
            return parameter
        return self.rule().xreplace({PARAMETER: parameter, GRADIENT: gradient, RATE: sp.Float(self.learning_rate)})
