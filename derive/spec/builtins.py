"""The built-in activations, losses and formula functions: the one table every stage reads.

Spec validation reads the names (this module is standard library only, so a bad
spec is reported without importing sympy); :mod:`derive.core.rules` parses each
formula with the safe parser and differentiates it; :mod:`derive.core.formula` takes
its function names from :data:`FUNCTIONS` and :mod:`derive.present.printing` their NumPy
names; :mod:`derive.core.init` reads which scheme draws a layer's weights. Adding an
activation is one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Init(StrEnum):
    """How a seeded layer's weights are drawn (the function names in :mod:`derive.core.init`'s source)."""

    XAVIER = "_xavier"  # Glorot uniform: keeps the variance of σ-, tanh-like layers
    HE = "_he"  # He normal: for rectifiers, which zero half their inputs


@dataclass(frozen=True)
class BuiltinActivation:
    """An activation: a formula in x (or, for a layer map, in the layer's nets) and its initialisation."""

    formula: str
    init: Init = Init.XAVIER
    layer_map: bool = False  # out_j depends on every net of the layer (softmax)


ACTIVATIONS: dict[str, BuiltinActivation] = {
    "sigmoid": BuiltinActivation("1/(1 + exp(-x))"),
    "tanh": BuiltinActivation("tanh(x)"),
    "relu": BuiltinActivation("max(x, 0)", Init.HE),
    "linear": BuiltinActivation("x"),
    "softplus": BuiltinActivation("log(1 + exp(x))"),
    # written so that the derivative at exactly 0 is torch's (1 for elu, 0.01 for leaky_relu) with relu'(0) = 0
    "elu": BuiltinActivation("exp(x - max(x, 0)) - 1 + max(x, 0)", Init.HE),  # α = 1, as torch.nn.ELU
    "leaky_relu": BuiltinActivation("x/100 + 99*max(x, 0)/100", Init.HE),  # slope 0.01, as torch.nn.LeakyReLU
    "gelu": BuiltinActivation("x*(1 + erf(x/sqrt(2)))/2", Init.HE),  # exact, as torch.nn.GELU()
    "softmax": BuiltinActivation("exp(x_j) / sum_k exp(x_k)", layer_map=True),
}
SOFTMAX = "softmax"


@dataclass(frozen=True)
class BuiltinLoss:
    """A loss: its per-output formula in o (output) and t (target), summed over outputs."""

    formula: str
    mean_over_outputs: bool = False  # divided by the number of outputs


LOSSES: dict[str, BuiltinLoss] = {
    "half_sse": BuiltinLoss("(t - o)**2/2"),
    "sse": BuiltinLoss("(t - o)**2"),
    "mse": BuiltinLoss("(t - o)**2", mean_over_outputs=True),
    "bce": BuiltinLoss("-(t*log(o) + (1 - t)*log(1 - o))"),
    "cross_entropy": BuiltinLoss("-t*log(o)"),
}


@dataclass(frozen=True)
class FormulaFunction:
    """A function a formula may call: how many arguments, and what computes it in generated NumPy code."""

    arity: int
    numpy: str


FUNCTIONS: dict[str, FormulaFunction] = {
    "exp": FormulaFunction(1, "np.exp"),
    "log": FormulaFunction(1, "np.log"),
    "ln": FormulaFunction(1, "np.log"),
    "sqrt": FormulaFunction(1, "np.sqrt"),
    "abs": FormulaFunction(1, "np.abs"),
    "tanh": FormulaFunction(1, "np.tanh"),
    "sinh": FormulaFunction(1, "np.sinh"),
    "cosh": FormulaFunction(1, "np.cosh"),
    "sin": FormulaFunction(1, "np.sin"),
    "cos": FormulaFunction(1, "np.cos"),
    "atan": FormulaFunction(1, "np.arctan"),
    # NumPy has no erf: math.erf elementwise (correctly rounded, ~50 ns a number)
    "erf": FormulaFunction(1, "np.vectorize(math.erf, otypes=[float])"),
    "max": FormulaFunction(2, "np.maximum"),
    "min": FormulaFunction(2, "np.minimum"),
}
CONSTANTS = ("pi", "e")


def builtin_activation(name: str) -> str | None:
    """The table's spelling of an activation name given in any case (ReLU → relu), or None."""
    return _canonical(name, ACTIVATIONS)


def builtin_loss(name: str) -> str | None:
    """The table's spelling of a loss name given in any case (BCE → bce), or None."""
    return _canonical(name, LOSSES)


def _canonical(name: str, table: Mapping[str, object]) -> str | None:
    folded = name.casefold()
    return next((key for key in table if key == folded), None)
